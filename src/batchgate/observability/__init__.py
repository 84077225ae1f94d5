"""What batchgate tells its operators: log lines (logs.py) and Prometheus metrics (metrics.py)."""
