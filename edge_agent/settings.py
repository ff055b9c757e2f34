"""Settings of the edge agent: a TOML file (``ortel agent --config gateway.toml``) plus ``ORTEL_AGENT_``
environment overrides (nested with ``__``, e.g. ``ORTEL_AGENT_MQTT__PORT=1884``). Read once at the entry point;
``service.run_agent`` turns them into plain values for the components.

Precedence: constructor arguments > environment > TOML file > defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from edge_agent.errors import ConfigError

__all__ = ["AdapterSettings", "AgentSettings", "MqttSettings", "PrivacySettings", "RuleSettings"]

_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttSettings(_Section):
    host: str = Field("127.0.0.1", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port (8883 for the TLS listener).")
    username: str | None = Field(None, description="Broker login; defaults to the gateway id (the ACL uses %u).")
    password: SecretStr | None = Field(None, description="Broker password.")
    cafile: Path | None = Field(None, description="CA certificate that signed the broker's certificate (enables TLS).")
    certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    keyfile: Path | None = Field(None, description="Private key of the client certificate.")
    keepalive_s: int = Field(15, ge=5, le=600, description="MQTT keepalive: how fast a dead link is noticed.")


class PrivacySettings(_Section):
    key: SecretStr | None = Field(
        None, description="HMAC key for case-id pseudonyms (>= 16 bytes). Unset: a random key is created once "
        "next to the outbox (<outbox>.key) and reused, so pseudonyms stay stable on this gateway.")
    patterns: tuple[str, ...] = Field(
        (r"(?i)\bMRN[:#\s]*\d{4,}\b", r"\b\d{3}-\d{2}-\d{4}\b", r"(?i)\bpatient[:#\s]+\S+"),
        description="Regular expressions of patient identifiers; every match in free text is replaced by "
        "'[redacted]' before anything is published.")


class RuleSettings(_Section):
    kind: Literal["threshold", "rate"] = Field("threshold", description="threshold-for-duration or rate-of-change.")
    code: str = Field(..., min_length=1, max_length=120, description="Alarm code carried by the events.")
    metric: str = Field(..., description="Metric name, in canonical units (e.g. pressure_mmhg in mm[Hg]).")
    above: float | None = Field(None, description="threshold: raise while the value is above this.")
    below: float | None = Field(None, description="threshold: raise while the value is below this.")
    for_s: float = Field(0.0, ge=0, description="threshold: the condition must hold this long (device time).")
    max_rate_per_s: float | None = Field(None, gt=0, description="rate: largest allowed |change| per second.")
    severity: Literal["low", "medium", "high"] = Field("medium", description="Severity of the alarm.")
    text: str = Field("", max_length=500, description="Human-readable alarm text.")
    device_type: str | None = Field(None, description="Only devices of this type (glob); unset = all.")
    device_id: str | None = Field(None, description="Only devices with this id (glob); unset = all.")

    @model_validator(mode="after")
    def _complete(self) -> RuleSettings:
        if self.kind == "threshold" and self.above is None and self.below is None:
            raise ValueError(f"rule {self.code}: a threshold rule needs 'above' or 'below'")
        if self.kind == "rate" and self.max_rate_per_s is None:
            raise ValueError(f"rule {self.code}: a rate rule needs 'max_rate_per_s'")
        return self


class AdapterSettings(_Section):
    tcp_host: str = Field("127.0.0.1", description="TCP adapter: address to listen on for NDJSON devices.")
    tcp_port: int | None = Field(None, ge=0, le=65535, description="TCP adapter port; unset = off.")
    mqtt_bus_host: str | None = Field(None, description="Local device MQTT bus host; unset = off.")
    mqtt_bus_port: int = Field(1883, ge=1, le=65535, description="Local device MQTT bus port.")
    mqtt_bus_topic: str = Field("devices/+/lines", description="Topic filter the devices publish lines on.")
    mqtt_bus_username: str | None = Field(None, description="Login on the local device bus.")
    mqtt_bus_password: SecretStr | None = Field(None, description="Password on the local device bus.")
    serial_port: str | None = Field(None, description="Serial device (e.g. /dev/ttyUSB0); needs pyserial.")
    serial_baud: int = Field(115200, description="Serial baud rate.")


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORTEL_AGENT_", env_nested_delimiter="__", extra="forbid")

    gateway_id: str = Field(..., pattern=_ID, description="This gateway's id; also its broker login by default.")
    room: str | None = Field(None, max_length=120, description="Operating room the gateway serves.")
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="Uplink broker.")
    outbox_path: Path = Field(Path("ortel-outbox.sqlite3"), description="SQLite outbox file (WAL mode).")
    flush_interval_s: float = Field(0.2, gt=0, le=60, description="Seal a device's batch after this long.")
    batch_max_samples: int = Field(50, ge=1, le=10_000, description="...or once it holds this many readings.")
    ack_timeout_s: float = Field(
        30.0, gt=0, description="Re-send a stream's uncommitted records when its watermark has not moved for "
        "this long; each further re-send without progress waits twice as long, up to 8x this.")
    outbox_max_bytes: int = Field(512 * 1024 * 1024, ge=4096, description="Outbox bound in bytes (payloads).")
    outbox_max_age_s: float = Field(7 * 86400.0, gt=0, description="Telemetry older than this is dropped.")
    replay_rate: float = Field(
        2000.0, gt=0, description="Backlog telemetry records re-sent per second after an outage (live data and "
        "events are not limited).")
    inflight_window: int = Field(
        500, ge=1, le=1000, description="QoS 1 publishes awaiting PUBACK at most (paho lost messages past "
        "65,535; Mosquitto's max_inflight_messages is 1000).")
    max_payload_bytes: int = Field(
        256 * 1024, ge=1024, description="Records larger than this are dead-lettered locally, not sent.")
    oversize_suspect_bytes: int = Field(
        64 * 1024, ge=1, description="A lost connection is blamed on the first unacknowledged record only if it is "
        "at least this large (Mosquitto drops the link on an over-limit publish); after 3 such losses that record "
        "is dead-lettered. Smaller records are never blamed: a flapping link must not drop good data.")
    heartbeat_s: float = Field(10.0, gt=0, le=3600, description="Device status heartbeat for devices without "
                               "their own (hello.heartbeat_s).")
    clock_jump_threshold_s: float = Field(2.0, gt=0, description="Device clock step flagged as a jump.")
    reconnect_base_s: float = Field(0.2, gt=0, description="First reconnect delay (doubles, jittered).")
    reconnect_cap_s: float = Field(30.0, gt=0, description="Longest reconnect delay.")
    ops_host: str = Field("127.0.0.1", description="Address of /metrics and /healthz.")
    ops_port: int | None = Field(None, ge=0, le=65535, description="Port of /metrics and /healthz; unset = off, "
                                 "0 = any free port.")
    exit_when_drained: bool = Field(
        False, description="Stop once every adapter is exhausted and the outbox is empty (batch runs, tests).")
    shutdown_grace_s: float = Field(5.0, ge=0, description="On SIGTERM, keep sending this long before exiting "
                                    "(the outbox keeps the rest).")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings, description="Pseudonyms and scrubbing.")
    rules: tuple[RuleSettings, ...] = Field((), description="Local alarm rules ([[rules]] tables).")
    adapters: AdapterSettings = Field(default_factory=AdapterSettings, description="Device inputs.")
    log_level: str = Field("info", description="debug, info, warning or error.")

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: object) -> AgentSettings:
        """Settings from a TOML file, with ``ORTEL_AGENT_*`` environment variables taking precedence."""
        toml_path = Path(path)
        if not toml_path.is_file():
            raise ConfigError(f"config file not found: {toml_path}")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            @classmethod
            def settings_customise_sources(
                cls,
                settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
            ) -> tuple[PydanticBaseSettingsSource, ...]:
                return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_path)

        loaded = _FromFile(**overrides)
        return cls.model_construct(**{name: getattr(loaded, name) for name in cls.model_fields})

    @property
    def broker_username(self) -> str:
        return self.mqtt.username or self.gateway_id
