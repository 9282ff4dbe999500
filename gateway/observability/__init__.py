"""What an operator sees of a running gateway: Prometheus metrics at ``/metrics``
(``metrics.py``, with the scrape-time gauges of ``fleet.py``), one log line per event
(``logs.py``), a request id per HTTP request and WebSocket connection (``request_id.py``),
and the middleware and operation hooks that feed them (``middleware.py``, ``operations.py``)."""
