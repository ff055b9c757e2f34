"""Settings of the ingest service, read once by ``ortel ingest`` (env prefix ``ORTEL_INGEST_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from wire import DEFAULT_MAX_BYTES

__all__ = ["IngestSettings"]


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORTEL_INGEST_", env_nested_delimiter="__", extra="ignore")

    dsn: str = Field(
        "host=127.0.0.1 dbname=ortel user=ortel_writer",
        description="libpq conninfo; ingest connects as the least-privilege role ortel_writer.",
    )
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host.")
    mqtt_port: int = Field(1883, description="MQTT broker port.")
    mqtt_user: str = Field("ingest", description="Broker login (the ACL grants user `ingest` read + watermarks).")
    mqtt_password: str = Field("", description="Broker password of `mqtt_user`.")
    client_id: str = Field(
        "ortel-ingest-1",
        description="Fixed MQTT client id: the broker keeps this id's session (and queues for it) while it is "
        "down. Every ingest process needs its own id.",
    )
    group: str = Field("ingest", description="Shared-subscription group: processes in one group split the load.")
    session_expiry_s: int = Field(
        86_400, ge=0, description="MQTT v5 session expiry: how long the broker keeps our session while we are "
        "offline. It "
        "queues at most mosquitto.conf's max_queued_messages for it; what it drops beyond that, the edge agents "
        "re-send because it was never acknowledged."
    )
    keepalive_s: int = Field(30, ge=5, description="MQTT keepalive.")
    batch_max_messages: int = Field(500, ge=1, description="Commit a batch once it holds this many messages...")
    batch_max_samples: int = Field(20_000, ge=1, description="...or this many samples...")
    batch_max_age_s: float = Field(
        0.1,
        gt=0,
        description="...or once its oldest message is this old (seconds). Most of the latency at light load; "
        "0.1 s kept throughput within run-to-run noise of 0.2 s and cut p99 latency by a third (docs/benchmarks.md).",
    )
    queue_max: int = Field(
        2000,
        ge=10,
        le=65_535,
        description="Bound of the receive queue, also sent to the broker as MQTT v5 Receive Maximum: at most "
        "this many unacknowledged messages are ever in memory; while the database is down reading stops.",
    )
    max_payload_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1024, description="Larger payloads are dead-lettered.")
    max_future_s: float = Field(300.0, ge=0, description="Reject records timestamped further ahead than this.")
    max_past_s: float = Field(30 * 86_400.0, ge=0, description="Reject records older than this.")
    refresh_interval_s: float = Field(
        60.0, gt=0, description="Plain PostgreSQL only: how often to refresh the samples_1m materialized view."
    )
    pool_max: int = Field(4, ge=2, description="Maximum database connections.")
    ops_host: str = Field("127.0.0.1", description="Bind address of /metrics and /healthz.")
    ops_port: int = Field(9102, ge=0, description="Port of /metrics and /healthz (0: pick a free port).")
    log_level: str = Field("info", description="debug | info | warning | error.")
    fault: str = Field(
        "",
        description="Test-only fault hook: kill_before_commit:N or kill_after_commit:N SIGKILLs the process "
        "at the Nth batch that holds numbered records. Empty in production.",
    )
