"""What operators see of the job while it runs: its log lines, its Prometheus metrics, and its health and
metrics endpoints."""
