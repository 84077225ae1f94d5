// Forms that act ask first: their data-confirm says what, and how many requests it touches.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Live parts (data-live) refresh when the page's one events stream (data-events) tells of an
// event, at most once a second however many arrive. The stream starts after the event the page
// was rendered at (data-after) and is closed while the tab is hidden; back in view it resumes
// after the last event heard, so what happened meanwhile refreshes the page once.
(() => {
  const holder = document.querySelector("[data-events]");
  if (!holder || !window.EventSource) {
    return;
  }
  // A Message Batch's events, then an OpenAI batch's end, by OpenAI's names (its progress is
  // batch.progress).
  const TYPES = ["batch.created", "batch.progress", "batch.canceling", "batch.ended",
    "batch.archived", "batch.deleted",
    "batch.completed", "batch.failed", "batch.expired", "batch.cancelled"];
  let after = holder.dataset.after;
  let source = null;
  let over = false;
  let timer = null;
  let last = 0;
  const refresh = () => {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        document.querySelectorAll("[data-live]").forEach((part) => htmx.trigger(part, "events"));
      }, Math.max(0, last + 1000 - Date.now()));
    }
  };
  const close = () => {
    source.close();
    source = null;
    holder.dataset.stream = "closed";
  };
  const heard = (event) => {
    after = event.lastEventId || after;
    refresh();
    // A batch's stream ends with its last event (data-last-event: its types, space-separated):
    // nothing more to wait for.
    if ((holder.dataset.lastEvent || "").split(" ").includes(event.type)) {
      over = true;
      close();
    }
  };
  const open = () => {
    source = new EventSource(`${holder.dataset.events}?after=${after}`);
    TYPES.forEach((type) => source.addEventListener(type, heard));
    holder.dataset.stream = "open";
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && source) {
      close();
    } else if (document.visibilityState === "visible" && !source && !over) {
      open();
    }
  });
  if (document.visibilityState === "visible") {
    open();
  }
})();
