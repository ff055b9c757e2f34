"""Settings of the simulators (``ORTEL_SIM_`` environment, nested with ``__``), read once by the CLI."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["MqttSettings", "SimSettings"]


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Broker host for record, replay and in-process gateways.")
    port: int = Field(1883, ge=1, le=65535, description="Broker port.")
    username: str = Field("ortel-admin", description="Operator login used by record and replay.")
    password: SecretStr | None = Field(None, description="Password of the operator login.")
    gateway_password: SecretStr | None = Field(
        None, description="Password of the simulated gateways' logins (user name = gateway id, e.g. gw-or1) "
        "for the in-process edge agents of `ortel simulate`.")


class SimSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORTEL_SIM_", env_nested_delimiter="__", extra="ignore")

    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="Broker connection.")
    passwords_file: Path | None = Field(
        None, description="TOML file with a [broker] table of login -> password (the demo's secrets.toml): "
        "gateway logins (gw-or1, ...) and the operator login are taken from it when present.")
    seed: int = Field(7, description="Seed of every random generator of a run (same seed, same traffic).")
    outbox_dir: Path = Field(Path(".ortel/sim"), description="Directory of the in-process edge agents' "
                             "SQLite outboxes (one file per simulated gateway).")
    drain_timeout_s: float = Field(30.0, ge=0, description="After the last line, how long in-process agents "
                                   "may take to have everything acknowledged by ingest before they stop.")
    batch_s: float = Field(1.0, gt=0, le=60, description="Offline recordings: the virtual gateway seals a "
                           "device's telemetry batch after this much virtual time.")
    log_level: str = Field("info", description="debug, info, warning or error.")
