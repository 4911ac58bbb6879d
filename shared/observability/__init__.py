"""What lets an operator watch the system run: JSON logs with context, W3C trace context on every event,
Prometheus metrics, and the function server that serves them."""
