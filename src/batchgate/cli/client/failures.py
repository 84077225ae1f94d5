"""How the client commands end: exit codes, and failures turned into one message on stderr."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from batchgate.cli.client.consoles import tell

if TYPE_CHECKING:
    import anthropic
    import openai
    from anthropic.types.messages import MessageBatch

EXIT_REQUESTS_FAILED = 1
EXIT_USAGE = 2
# `submit --skip-invalid`: submitted, but some lines of the file were left out. EXIT_REQUESTS_FAILED
# comes first: the requests it names need `batchgate retry`; the lines were named on stderr.
EXIT_LINES_SKIPPED = 3
# What shells report for a process ended by SIGINT.
EXIT_INTERRUPTED = 130

# The SDK reports missing credentials as a TypeError whose message starts so.
_MISSING_CREDENTIALS = "Could not resolve authentication method"

Params = ParamSpec("Params")
Returned = TypeVar("Returned")


class CommandFailure(Exception):
    """Something the user can fix; the message says what. Ends the command with EXIT_USAGE."""


def refuse_options(subject: str, given: dict[str, bool], applies_to: str) -> None:
    """Refuses the options `given` (those set) that do not apply to `subject`."""
    wrong = [option for option, present in given.items() if present]
    if wrong:
        raise CommandFailure(
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to {subject}:"
            f" only to {applies_to}"
        )


def exit_code_for(batches: Sequence[MessageBatch]) -> int:
    """EXIT_REQUESTS_FAILED when an ended batch holds requests `batchgate retry` would resubmit."""
    failed = any(batch.request_counts.errored or batch.request_counts.expired for batch in batches)
    return EXIT_REQUESTS_FAILED if failed else 0


def _describe(error: anthropic.APIStatusError | openai.APIStatusError) -> str:
    body = error.body
    # Anthropic's SDK keeps the whole envelope; OpenAI's, what its "error" key holds.
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and "message" in body:
        kind, message = body.get("type") or "error", body["message"]
        return f"{kind}: {message} (HTTP {error.status_code})"
    return f"HTTP {error.status_code}: {error.message}"


def _openai_failure(error: Exception) -> str | None:
    """The message of an `openai` SDK error; None for any other (or when the commands of this
    run never loaded that SDK: then it cannot have raised)."""
    openai = sys.modules.get("openai")
    if openai is None or not isinstance(error, openai.OpenAIError):
        return None
    if isinstance(error, openai.APIStatusError):
        return _describe(error)
    if isinstance(error, openai.APIConnectionError):
        return f"cannot reach {error.request.url}: {error}"
    return str(error)


def _stop(message: str) -> typer.Exit:
    tell(f"error: {message}")
    return typer.Exit(EXIT_USAGE)


def reports_failures(command: Callable[Params, Returned]) -> Callable[Params, Returned]:
    """Ends `command` with a one-line message and EXIT_USAGE instead of a traceback.

    Ctrl-C ends it with EXIT_INTERRUPTED.
    """

    @functools.wraps(command)
    def run(*args: Params.args, **kwargs: Params.kwargs) -> Returned:
        import anthropic

        try:
            return command(*args, **kwargs)
        except CommandFailure as failure:
            raise _stop(str(failure)) from None
        except anthropic.APIStatusError as error:
            raise _stop(_describe(error)) from None
        except anthropic.APIConnectionError as error:
            raise _stop(f"cannot reach {error.request.url}: {error}") from None
        except anthropic.AnthropicError as error:
            raise _stop(str(error)) from None
        except KeyboardInterrupt:
            # Not click's "Aborted!" and exit 1, which would read as "requests failed".
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except TypeError as error:
            if not str(error).strip('"').startswith(_MISSING_CREDENTIALS):
                raise
            raise _stop(
                "no API key: set ANTHROPIC_API_KEY or pass --api-key (a batchgate server"
                " without BATCHGATE_API_KEYS accepts any key)"
            ) from None
        except Exception as error:
            message = _openai_failure(error)
            if message is None:
                raise
            raise _stop(message) from None

    return run
