"""The one way a single request fails: an error type from Anthropic's vocabulary and a message."""


class RequestError(Exception):
    """A request that ends as an `errored` result, unless it is transient and retried first.

    `error_type` is one of Anthropic's error types (`invalid_request_error`, `not_found_error`,
    `rate_limit_error`, `api_error`, `overloaded_error`, ...); `message` says what and why.
    `transient` marks failures worth retrying (429, 5xx, 529, timeouts, resets), and
    `retry_after` carries the upstream's requested wait in seconds when it gave one.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.transient = transient
        self.retry_after = retry_after
