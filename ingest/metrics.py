"""Prometheus metrics of one ingest service (its own registry, so tests can run several in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("ortel_ingest_messages", "MQTT messages received, by topic kind", ["kind"],
                                registry=r)
        self.received = Counter(
            "ortel_ingest_received", "MQTT messages taken off the socket (before the queue)", registry=r
        )
        self.rows = Counter("ortel_ingest_rows", "Rows inserted, by table", ["table"], registry=r)
        self.conflicts = Counter(
            "ortel_ingest_conflicts", "Rows already stored (redeliveries, replays): not inserted again", registry=r
        )
        self.dead_letters = Counter("ortel_ingest_dead_letters", "Dead-lettered messages, by reason", ["reason"],
                                    registry=r)
        self.gaps = Counter("ortel_ingest_gaps", "Sequence gaps opened", registry=r)
        self.batches = Counter("ortel_ingest_batches", "Committed batches", registry=r)
        self.db_errors = Counter("ortel_ingest_db_errors", "Failed batch transactions (retried)", registry=r)
        self.batch_seconds = Histogram(
            "ortel_ingest_batch_seconds", "Time to write and commit one batch", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.lag = Gauge("ortel_ingest_lag_seconds", "Commit time minus gateway seal time, newest batch", registry=r)
        self.queue_depth = Gauge("ortel_ingest_queue_depth", "Messages waiting in the receive queue", registry=r)
        self.connected = Gauge("ortel_ingest_mqtt_connected", "1 while connected to the broker", registry=r)
