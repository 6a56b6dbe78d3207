"""The docs list exactly the settings ``anonauth.conf`` reads and the checks it runs.

The tables may live in the README or in ``docs/**/*.md``: a settings table is a
Markdown table whose first column is headed ``setting``, a checks table one whose first
column is headed ``id``. Every such table in those files counts. The docs site's
settings reference is generated from ``anonauth.conf`` with the descriptions of
``docs/settings.toml``, whose sections count as documented settings too.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from anonauth import checks
from anonauth.conf import Settings

ROOT = Path(__file__).resolve().parent.parent
CHECK_ID = re.compile(r"anonauth\.[EW]\d{3}")
SETTING_NAME = re.compile(r"ANONAUTH_[A-Z0-9_]+")


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def first_cells_of_tables(header: str) -> list[str]:
    """The first cell of each body row of every table whose first column is ``header``."""
    cells: list[str] = []
    for path in doc_files():
        in_table = False
        for line in path.read_text(encoding="utf-8").splitlines():
            row = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.lstrip().startswith("|"):
                in_table = False
            elif row[0].lower() == header:
                in_table = True
            elif in_table and not set(row[0]) <= set("-: "):
                cells.append(row[0])
    return cells


def documented(header: str, pattern: re.Pattern[str]) -> set[str]:
    return {match for cell in first_cells_of_tables(header) for match in pattern.findall(cell)}


def difference(documented: set[str], actual: set[str]) -> str:
    return (
        f"documented but unknown: {sorted(documented - actual)}; "
        f"missing from the docs: {sorted(actual - documented)}"
    )


def described_settings() -> set[str]:
    """The settings ``docs/settings.toml`` describes (one section each)."""
    path = ROOT / "docs" / "settings.toml"
    if not path.exists():
        return set()
    return {f"ANONAUTH_{name}" for name in tomllib.loads(path.read_text(encoding="utf-8"))}


def test_the_settings_table_lists_every_setting() -> None:
    actual = {
        f"ANONAUTH_{name}" for name, value in vars(Settings).items() if isinstance(value, property)
    }
    listed = documented("setting", SETTING_NAME) | described_settings()
    assert listed, "no settings table in README.md or docs/, and no docs/settings.toml"
    assert listed == actual, difference(listed, actual)


def test_the_checks_table_lists_every_check() -> None:
    actual = set(CHECK_ID.findall(Path(checks.__file__).read_text(encoding="utf-8")))
    listed = documented("id", CHECK_ID)
    assert listed, "no checks table (first column headed 'id') in README.md or docs/"
    assert listed == actual, difference(listed, actual)


def test_tables_are_found_in_docs_files_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader itself: a table in ``docs/`` counts, other tables and prose do not."""
    (tmp_path / "docs" / "guide").mkdir(parents=True)
    (tmp_path / "README.md").write_text(
        "`ANONAUTH_PROSE` in prose\n\n| gate | code |\n|---|---|\n| `ANONAUTH_GATE` | x |\n"
    )
    (tmp_path / "docs" / "guide" / "settings.md").write_text(
        "| Setting | type |\n|:--|--|\n| `ANONAUTH_ONE` | bool |\n| `ANONAUTH_TWO` | int |\n"
        "\nafter the table `ANONAUTH_AFTER`\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert documented("setting", SETTING_NAME) == {"ANONAUTH_ONE", "ANONAUTH_TWO"}
