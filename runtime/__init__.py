"""Operational plumbing shared by the long-running services: logging, backoff, /metrics and /healthz.

Not part of the wire contract and free of any component's logic; components may import it.
"""
