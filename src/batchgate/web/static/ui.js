// Forms that act ask first: their data-confirm says what, and how many requests it touches.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset && event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Live parts (data-live) refresh when the page's one events stream (data-events) tells of an
// event, at most once a second however many arrive. The stream is closed while the tab is
// hidden; back in view, the parts refresh once and the stream reopens from now on.
(() => {
  const holder = document.querySelector("[data-events]");
  if (!holder || !window.EventSource) {
    return;
  }
  const TYPES = ["batch.created", "batch.progress", "batch.canceling", "batch.ended",
    "batch.archived", "batch.deleted"];
  let source = null;
  let timer = null;
  let last = 0;
  const refreshNow = () => {
    last = Date.now();
    document.querySelectorAll("[data-live]").forEach((part) => htmx.trigger(part, "events"));
  };
  const refresh = () => {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        refreshNow();
      }, Math.max(0, last + 1000 - Date.now()));
    }
  };
  const open = () => {
    source = new EventSource(holder.dataset.events);
    TYPES.forEach((type) => source.addEventListener(type, refresh));
    holder.dataset.stream = "open";
  };
  const close = () => {
    source.close();
    source = null;
    holder.dataset.stream = "closed";
  };
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden" && source) {
      close();
    } else if (document.visibilityState === "visible" && !source) {
      refreshNow();
      open();
    }
  });
  if (document.visibilityState === "visible") {
    open();
  }
})();
