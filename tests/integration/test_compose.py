"""compose.yaml, Dockerfile and .env.example, checked offline (no Docker daemon, no network).

- compose.yaml validates against the compose-spec JSON schema vendored in check-jsonschema;
- every ORTEL_* variable a service sets is a field of that component's settings model, and the settings
  actually load from the service's environment (types and constraints included);
- the broker service mounts the repo's mosquitto.conf and ACLs, and a file for every path the config names;
- the ports services use exist as listeners, and only the TLS listener and the dashboard (loopback) are
  published; no secret is written in compose.yaml and .env.example names every secret it needs.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic_settings import BaseSettings
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")
SETTINGS = {
    "AGENT": ("edge_agent.settings", "AgentSettings"),
    "INGEST": ("ingest.settings", "IngestSettings"),
    "DASHBOARD": ("dashboard.settings", "DashboardSettings"),
    "SIM": ("simulators.settings", "SimSettings"),
}
# Variables read by the CLI itself (typer envvar=...), not by a component's settings.
CLI_VARS = {"ORTEL_DB_DSN", "ORTEL_DB_WRITER_PASSWORD", "ORTEL_DB_READER_PASSWORD"}


def _compose() -> dict[str, Any]:
    return YAML(typ="safe").load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts as target -> source, with ``${VAR:-default}`` taken at its default."""
    out = {}
    for volume in service.get("volumes", []):
        resolved = re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", volume)
        source, target, *_ = resolved.split(":")
        out[target] = source
    return out


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(tool), "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_compose_validates_against_the_compose_spec_offline() -> None:
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_does_reject_an_invalid_compose_file(tmp_path: Path) -> None:
    """The control: the same check fails a file the spec forbids (so a pass above means something)."""
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  x:\n    image: [not, a, string]\n    restart: sometimes\n    bogus_key: 1\n")
    assert _check_jsonschema(bad).returncode != 0


def _field_exists(model: type[BaseModel], path: list[str]) -> bool:
    fields = {name.lower(): info for name, info in model.model_fields.items()}
    head, *rest = path
    info = fields.get(head.lower())
    if info is None:
        return False
    if not rest:
        return True
    annotation = info.annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel) and _field_exists(annotation, rest)


def _settings_class(component: str) -> type[BaseSettings]:
    module, name = SETTINGS[component]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def test_every_ortel_variable_is_a_settings_field() -> None:
    unknown = []
    for name, service in _compose()["services"].items():
        for var in _env(service):
            if not var.startswith("ORTEL_") or var in CLI_VARS:
                continue
            component, _, rest = var.removeprefix("ORTEL_").partition("_")
            if component not in SETTINGS or not _field_exists(_settings_class(component), rest.split("__")):
                unknown.append(f"{name}: {var}")
    assert unknown == []


def test_cli_variables_are_read_by_the_cli() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "ortel_cli").glob("cmd_*.py"))
    assert {v for v in CLI_VARS if v not in source} == set()


def _resolved_env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with ${VAR...} interpolations replaced by harmless example values."""
    return {k: _INTERPOLATION.sub("example-value-1234", v) for k, v in _env(service).items()}


@pytest.mark.parametrize("service,component", [("ingest", "INGEST"), ("dashboard", "DASHBOARD")])
def test_service_settings_load_from_the_compose_environment(
    service: str, component: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _resolved_env(_compose()["services"][service]).items():
        monkeypatch.setenv(key, value)
    settings = _settings_class(component)()
    assert "host=db" in str(settings.dsn)  # type: ignore[attr-defined]


def test_agent_settings_load_from_the_compose_environment_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge_agent.settings import AgentSettings

    agent = _compose()["services"]["agent"]
    for key, value in _resolved_env(agent).items():
        monkeypatch.setenv(key, value)
    config = ROOT / _mounts(agent)["/etc/ortel/gateway.toml"]
    settings = AgentSettings.from_toml(config)
    assert settings.gateway_id == "gw-or1"
    assert settings.mqtt.port == 8883 and settings.mqtt.certfile is not None  # mutual TLS, like a real gateway
    assert settings.mqtt.password is None


def _listeners() -> dict[str, str]:
    """mosquitto.conf listener port -> bind address ("" = all interfaces)."""
    found = {}
    for line in (ROOT / "mosquitto.conf").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["listener"]:
            found[parts[1]] = parts[2] if len(parts) > 2 else ""
    return found


def test_broker_service_mounts_the_repos_config_and_every_file_it_names() -> None:
    broker = _compose()["services"]["mosquitto"]
    mounts = _mounts(broker)
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto.conf"
    assert mounts["/mosquitto/config/acl"] == "./mosquitto.acl"
    assert mounts["/mosquitto/config/acl-gateways"] == "./mosquitto.gateways.acl"
    assert all(v.endswith(":ro") for v in broker["volumes"] if v.startswith(("./", "$")))
    for line in (ROOT / "mosquitto.conf").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in {"password_file", "acl_file", "cafile", "certfile", "keyfile"}:
            assert parts[1] in mounts, f"{parts[0]} {parts[1]} is not mounted"
        if parts and parts[0] == "persistence_location":
            assert parts[1].rstrip("/") in mounts, "the broker's store must live on a volume"


def test_services_reach_the_broker_on_listeners_that_exist_and_only_tls_is_published() -> None:
    compose = _compose()
    listeners = _listeners()
    assert listeners["1883"] == "127.0.0.1" and "8883" in listeners and "1884" in listeners
    services = compose["services"]
    assert _env(services["ingest"])["ORTEL_INGEST_MQTT_PORT"] in listeners
    assert _env(services["agent"])["ORTEL_AGENT_MQTT__PORT"] == "8883"
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"mosquitto", "dashboard"}
    assert [p.rsplit(":", 1)[1] for p in published["mosquitto"]] == ["8883"]
    assert all(p.startswith("127.0.0.1:") for p in published["dashboard"])
    assert "ports" not in services["db"]


def test_no_secret_is_written_in_compose_and_env_example_names_every_secret() -> None:
    text = COMPOSE.read_text()
    for service in _compose()["services"].values():
        for key, value in _env(service).items():
            if re.search(r"PASSWORD|SECRET|KEY$", key) and not key.endswith(("FILE", "KEYFILE")):
                assert _INTERPOLATION.fullmatch(value), f"{key} must come from .env, not compose.yaml"
        for value in _env(service).values():
            if "password=" in value:
                assert re.search(r"password=\$\{", value), value
    required = {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+):\?", text)}
    example = {line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    assert required <= example, f"missing from .env.example: {required - example}"


def test_dockerfile_runs_as_non_root_and_ships_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"pip install \.", dockerfile)
    for package in ("wire", "runtime", "edge_agent", "ingest", "dashboard", "simulators", "ortel_cli"):
        assert re.search(rf"^COPY {package} ", dockerfile, re.M), package
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".ortel/" in ignored and ".env" in ignored  # secrets never enter the build context


def test_every_ortel_command_in_compose_exists_with_its_options() -> None:
    """`ortel <command> --help` lists every option compose passes (catches a renamed command or flag)."""
    from typer.testing import CliRunner

    from ortel_cli.main import app

    runner = CliRunner()
    problems = []
    for name, service in _compose()["services"].items():
        command = service.get("command") or []
        shell = command[:2] == ["sh", "-c"]
        steps = [step.split() for step in command[2].split("&&")] if shell else [command]
        for argv in steps:
            if argv[:1] != ["ortel"]:
                continue
            words = [w for w in argv[1:] if not w.startswith("-")][:2]
            result = runner.invoke(app, [*_command_path(words), "--help"])
            options = [w for w in argv if w.startswith("--")]
            missing = [o for o in options if o not in result.output]
            if result.exit_code != 0 or missing:
                problems.append(f"{name}: {' '.join(argv)} -> exit {result.exit_code}, missing {missing}")
    assert problems == []


def _command_path(words: list[str]) -> list[str]:
    """The sub-command words of an argv (``db migrate``, ``users db-passwords``, ``ingest``)."""
    groups = {"db", "users", "dashboard"}
    return words[:2] if words and words[0] in groups else words[:1]


def test_compose_env_command_provides_every_variable_compose_requires(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ortel_cli.main import app
    from ortel_cli.security import ensure_dev_secrets

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["users", "compose-env"])
    assert result.exit_code == 0, result.output
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    required = {m.group(1) for m in re.finditer(r"\$\{([A-Z0-9_]+):\?", COMPOSE.read_text())}
    assert required <= set(env)
    secrets = ensure_dev_secrets(tmp_path / ".ortel")  # the same secrets, reused
    assert env["ORTEL_INGEST_MQTT_PASSWORD"] == secrets.broker_passwords["ingest"]
    assert env["ORTEL_DB_READER_PASSWORD"] == secrets.db_passwords["ortel_reader"]
    assert env["ORTEL_SECRETS_DIR"] == "./.ortel"
    for name, service in _compose()["services"].items():  # every secret file compose mounts now exists
        for volume in service.get("volumes", []):
            if volume.startswith("${ORTEL_SECRETS_DIR"):
                source = volume.split("}", 1)[1].split(":")[0]
                assert (tmp_path / env["ORTEL_SECRETS_DIR"] / source.lstrip("/")).is_file(), f"{name}: {volume}"
    assert runner.invoke(app, ["users", "compose-env"]).exit_code != 0  # never overwrites a .env
