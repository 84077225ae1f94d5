"""The rules of batches, between the front-ends (the HTTP APIs) and the store (batches.py)."""
