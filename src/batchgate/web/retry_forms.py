"""The dashboard's "Retry failed" forms: which requests a retry takes, read from the form into
the selection the API's retry bodies make (api/batch_retry.py, api/openai_retry_body.py), with
the same checks: a bad value is a 400 page, and nothing is created.

Unticked checkboxes post nothing, so each form says it carries its choices (CHOSEN); a post
without them (an older page, a script) asks for the default, as an API call without a body does.
"""

import re

from starlette.datastructures import FormData

from batchgate.api import batch_retry, openai_retry_body
from batchgate.api.errors import ApiError
from batchgate.service.retries import OpenAIRetrySelection, RetrySelection
from batchgate.web.session import text

CHOSEN = "chosen"
# The values of a ticked checkbox: a browser's default, or what a form names.
TICKED = ("on", "true")
# A list typed in a text field: names or codes apart by commas or spaces.
SEPARATORS = re.compile(r"[\s,]+")


def _typed(form: FormData, name: str) -> list[str]:
    return [item for item in SEPARATORS.split(text(form, name)) if item]


def _ticked(form: FormData, name: str) -> bool:
    values = form.getlist(name)
    if any(value not in TICKED for value in values):
        raise ApiError(400, f"{name}: a checkbox is ticked ('on') or left out, not {values[0]!r}.")
    return bool(values)


def message_batch_selection(form: FormData) -> RetrySelection:
    """The results a Message Batch's retry takes: of the ticked types, the errored ones of the
    typed error types (any when none)."""
    if CHOSEN not in form:
        return RetrySelection()
    result_types = [str(value) for value in form.getlist("result_type")]
    if not result_types:
        raise ApiError(400, "Choose at least one kind of result to retry.")
    return batch_retry.selection_of(
        {"result_types": result_types, "error_types": _typed(form, "error_types") or None}
    )


def openai_selection(form: FormData) -> OpenAIRetrySelection:
    """The lines an OpenAI batch's retry takes: those answered with a ticked class or a typed
    status code (every failed status when none), of the typed error types (any when none), and
    the cancelled and expired ones if ticked."""
    if CHOSEN not in form:
        return OpenAIRetrySelection()
    status_codes = [str(value) for value in form.getlist("status_class")]
    status_codes += _typed(form, "status_codes")
    return openai_retry_body.selection_of(
        {
            "status_codes": status_codes or None,
            "error_types": _typed(form, "error_types") or None,
            "include_cancelled": _ticked(form, "include_cancelled"),
            "include_expired": _ticked(form, "include_expired"),
        }
    )
