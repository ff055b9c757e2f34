"""The dashboard's pure core (state derivation, downsampling, figures, row types, credentials) does no I/O,
and every page keeps its ids prefixed by its own name."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = ["status.py", "downsample.py", "figures.py", "timeline.py", "rows.py", "credentials.py", "settings.py"]
IO_LIBS = {"psycopg", "psycopg_pool", "dash", "flask", "flask_login", "dash_ag_grid", "dash_bootstrap_components",
           "socket", "http", "requests", "sqlite3"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    assert _imports(ROOT / "dashboard" / module) & IO_LIBS == set()


@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "dashboard" / "pages").glob("[!_]*.py")))
def test_page_ids_are_prefixed_by_the_page(page: str) -> None:
    text = (ROOT / "dashboard" / "pages" / page).read_text()
    prefix = page.removesuffix(".py").rstrip("s")  # "devices" and "device" share "device-"
    ids = re.findall(r'\bid="([^"]+)"', text) + re.findall(r'(?:Input|Output|State)\("([^"]+)"', text)
    assert ids, page
    assert all(i.startswith(prefix) for i in ids), [i for i in ids if not i.startswith(prefix)]
