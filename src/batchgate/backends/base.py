"""What every backend provides."""

from typing import Any, Protocol


class Backend(Protocol):
    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        """Returns a complete Message object for already-validated params.

        Raises `batchgate.errors.RequestError` when the request cannot succeed.
        """
        ...

    async def aclose(self) -> None:
        """Closes the connections it holds, once the engine that called it has stopped."""
        ...
