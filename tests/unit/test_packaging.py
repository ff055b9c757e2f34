"""What the wheel (and so the Docker image) carries: every data file the packages read at run time is covered
by a ``package-data`` pattern in pyproject.toml. A new kind of file (a dashboard script, a migration, a scenario)
without a pattern would work from the source tree and be missing in the image."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_data_file_of_every_package_is_shipped() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["*"]
    roots = [REPO / name.rstrip("*") for name in config["packages"]["find"]["include"]]
    data = [p for root in roots for p in root.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert any(p.name == "session.js" for p in data), "the scan sees the dashboard's assets"
    missing = [str(p.relative_to(REPO)) for p in data if not any(fnmatch.fnmatch(p.name, pat) for pat in patterns)]
    assert missing == [], f"not covered by [tool.setuptools.package-data]: {missing}"
