"""The shape of the house: one shared contract, four components that never import each other, and pure
core modules that do no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("edge_agent", "ingest", "dashboard", "simulators")
SHARED = ("wire", "runtime")
IO_LIBS = {"paho", "aiomqtt", "psycopg", "psycopg_pool", "dash", "flask", "sqlite3", "socket", "serial",
           "requests", "http", "asyncio"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_never_import_each_other(component: str) -> None:
    assert _modules(component), f"{component}/ has no modules"
    others = set(COMPONENTS) - {component}
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & others) for p in _modules(component)}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("package", SHARED)
def test_shared_packages_import_no_component(package: str) -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & set(COMPONENTS)) for p in _modules(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_wire_contract_does_no_io() -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & IO_LIBS) for p in _modules("wire")}
    assert {k: v for k, v in offenders.items() if v} == {}


# Pure core modules: decisions, encoding, accounting, rules, signal models, figures. No broker, database,
# SQLite, HTTP or event loop in them.
PURE = [
    "wire/models.py", "wire/topics.py", "wire/codec.py", "wire/device.py", "wire/asyncapi.py", "runtime/backoff.py",
    "edge_agent/units.py", "edge_agent/privacy.py", "edge_agent/clock.py", "edge_agent/rules.py",
    "edge_agent/batching.py", "edge_agent/pipeline.py", "edge_agent/reports.py", "edge_agent/sendstate.py",
    "ingest/batcher.py", "ingest/classify.py", "ingest/rows.py", "ingest/ledger.py",
    "dashboard/status.py", "dashboard/downsample.py", "dashboard/figures.py", "dashboard/timeline.py",
    "simulators/scenario.py", "simulators/timeline.py", "simulators/plan.py", "simulators/load.py",
    "simulators/generate.py", "simulators/faults.py", "simulators/gateway.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "simulators" / "devices").glob("*.py")),
]


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    path = ROOT / module
    assert path.exists(), f"{module} is listed as pure but does not exist"
    assert _imports(path) & IO_LIBS == set()
