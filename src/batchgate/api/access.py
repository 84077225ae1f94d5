"""What a caller may do: read-only keys see their workspace but change nothing.

Every endpoint that changes something, in the API and in the dashboard, asks `require_write`
first, so a read-only key is refused the same way wherever it acts.
"""

from batchgate.api.auth import Caller
from batchgate.api.errors import ApiError

READ_ONLY_REFUSAL = "This API key is read-only: it can see batches but not create or change them."


def require_write(caller: Caller) -> None:
    """Raises a 403 (permission_error) for a read-only key."""
    if caller.read_only:
        raise ApiError(403, READ_ONLY_REFUSAL)
