"""The one way a single request fails: an error type from Anthropic's vocabulary and a message."""


class RequestError(Exception):
    """A request that ends as an `errored` result.

    `error_type` is one of Anthropic's error types (`invalid_request_error`, `not_found_error`,
    `rate_limit_error`, `api_error`, `overloaded_error`, ...); `message` says what and why.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
