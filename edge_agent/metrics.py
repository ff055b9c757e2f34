"""Prometheus metrics of one agent (its own registry, so several agents can share a process in tests)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["AgentMetrics"]


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.outbox_records = Gauge("ortel_agent_outbox_records", "Records in the outbox", registry=r)
        self.outbox_bytes = Gauge("ortel_agent_outbox_bytes", "Bytes of records in the outbox", registry=r)
        self.outbox_oldest_age = Gauge("ortel_agent_outbox_oldest_age_seconds",
                                       "Age of the oldest record in the outbox", registry=r)
        self.connected = Gauge("ortel_agent_connected", "1 while connected to the broker", registry=r)
        self.inflight = Gauge("ortel_agent_inflight", "Publishes awaiting PUBACK", registry=r)
        self.lines = Counter("ortel_agent_lines", "Device lines read", ["adapter"], registry=r)
        self.bad_lines = Counter("ortel_agent_bad_lines", "Device lines rejected", ["adapter"], registry=r)
        self.appended = Counter("ortel_agent_records_appended", "Records committed to the outbox", registry=r)
        self.published = Counter("ortel_agent_published", "Records published and PUBACKed", ["replay"],
                                 registry=r)
        self.acked = Counter("ortel_agent_acked_records", "Records deleted after a watermark", registry=r)
        self.resends = Counter("ortel_agent_resends", "Streams re-sent after an ack timeout", registry=r)
        self.reconnects = Counter("ortel_agent_reconnects", "Broker connection attempts after the first",
                                  registry=r)
        self.dropped = Counter("ortel_agent_dropped_records", "Telemetry records dropped by the outbox policy",
                               ["reason"], registry=r)
        self.dead_letters = Counter("ortel_agent_dead_letters", "Records refused by the broker, kept locally",
                                    registry=r)
        self.alarms = Counter("ortel_agent_alarms", "Alarm events raised by edge rules", registry=r)
        self.clock_jumps = Counter("ortel_agent_clock_jumps", "Device clock jumps detected", registry=r)
