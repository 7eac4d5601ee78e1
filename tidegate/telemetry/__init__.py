"""Observability: logs, the access log, metrics aggregated over a node's workers, traces.

What operators look at: request rates, latencies and errors per endpoint and backend, traces that
cross the gateway, and the reload history (which config each node serves, what a broken save said).
"""
