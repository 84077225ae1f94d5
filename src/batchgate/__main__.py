from batchgate.cli import app

app()
