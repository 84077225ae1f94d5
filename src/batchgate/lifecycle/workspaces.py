"""Workspaces: every batch belongs to one, named in the store by its owner tag."""


def workspace_owner(workspace: str) -> str:
    """The owner tag of a workspace's batches. Hashes of env keys never contain a colon."""
    return f"workspace:{workspace}"
