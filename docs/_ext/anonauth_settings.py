"""The settings reference, generated from ``anonauth.conf.Settings`` so it cannot drift.

A page that contains the block

    ```{anonauth-settings}
    ```

gets, in its place, a table of the settings with their summaries and one section per property of
``anonauth.conf.Settings``: the setting's name, its type (the property's annotation),
its default (read from a fresh ``Settings()`` with every ``ANONAUTH_*`` setting
removed, i.e. what a project that sets nothing gets) and its description, which comes
from ``docs/settings.toml``. A property without a description, or a description of a
setting that no longer exists, is a warning, and ``make docs`` (``-W``) fails on it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.test import override_settings
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

MARKER = re.compile(r"^```\{anonauth-settings\}\n```\n", re.MULTILINE)
DESCRIPTIONS = Path(__file__).resolve().parent.parent / "settings.toml"
LONG_DEFAULT = 60  # characters: longer defaults are shown as a block, not inline


@dataclass(frozen=True)
class Entry:
    name: str
    annotation: str
    default: Any
    constant: str | None  # the anonauth.conf constant the default is, if any
    accepts: str | None
    summary: str
    description: str


def project_defaults(names: list[str]) -> dict[str, Any]:
    """Each property's value from a fresh ``Settings()`` when no ANONAUTH_* is set."""
    from anonauth.conf import Settings

    with override_settings():
        for name in [name for name in dir(settings) if name.startswith("ANONAUTH_")]:
            delattr(settings, name)
        fresh = Settings()
        return {name: getattr(fresh, name) for name in names}


def read_descriptions() -> dict[str, dict[str, str]]:
    with DESCRIPTIONS.open("rb") as file:
        return tomllib.load(file)


def entries(docname: str) -> list[Entry]:
    """Every property of ``Settings``, in source order, with its docs-side description."""
    from anonauth import conf

    properties = {
        name: value for name, value in vars(conf.Settings).items() if isinstance(value, property)
    }
    defaults = project_defaults(list(properties))
    descriptions = read_descriptions()
    constants = {
        id(value): name
        for name, value in vars(conf).items()
        if name.isupper() and isinstance(value, tuple | list | dict)
    }
    for stale in sorted(set(descriptions) - set(properties)):
        logger.warning(
            "docs/settings.toml describes ANONAUTH_%s, which anonauth.conf.Settings does not have",
            stale,
            location=docname,
        )
    found = []
    for name, prop in properties.items():
        text = descriptions.get(name, {})
        if not text.get("summary") or not text.get("description"):
            logger.warning(
                "ANONAUTH_%s (anonauth.conf.Settings.%s) needs a summary and a description "
                "in docs/settings.toml",
                name,
                name,
                location=docname,
            )
        found.append(
            Entry(
                name=name,
                annotation=str(prop.fget.__annotations__.get("return", "")),
                default=defaults[name],
                constant=constants.get(id(defaults[name])),
                accepts=text.get("accepts"),
                summary=text.get("summary", "").strip(),
                description=text.get("description", "").strip(),
            )
        )
    return found


def inline_default(entry: Entry) -> str:
    if entry.constant:
        return f"`anonauth.conf.{entry.constant}`"
    text = repr(entry.default)
    return f"`{text}`" if len(text) <= LONG_DEFAULT else "(see below)"


def literal(value: Any) -> str:
    """Python source for a value; regular expressions as raw strings, as written in conf.py."""
    if isinstance(value, str) and "\\" in value and "'" not in value:
        return f"r'{value}'"
    return repr(value)


def default_block(entry: Entry) -> list[str]:
    """The whole value, one item a line, for long defaults and named constants."""
    value = entry.default
    if not entry.constant and len(repr(value)) <= LONG_DEFAULT:
        return []
    if isinstance(value, tuple | list):
        items = [f"    {literal(item)}," for item in value]
        open_, close = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        body = [f"{entry.constant or 'default'} = {open_}", *items, close]
    else:
        body = [f"{entry.constant or 'default'} = {value!r}"]
    return ["", "```python", *body, "```"]


def cell(text: str) -> str:
    """Text for a Markdown table cell: a ``|`` (as in ``str | None``) would end it."""
    return text.replace("|", "\\|")


def anchor(entry: Entry) -> str:
    return f"setting-{entry.name.lower().replace('_', '-')}"


def render(found: list[Entry]) -> str:
    lines = ["| setting | |", "|---|---|"]
    for entry in found:
        name = f"{{ref}}`ANONAUTH_{entry.name} <{anchor(entry)}>`"
        lines.append(f"| {name} | {cell(entry.summary)} |")
    for entry in found:
        lines += ["", f"({anchor(entry)})=", f"## `ANONAUTH_{entry.name}`", ""]
        kind = f"`{entry.annotation}`"
        if entry.accepts:
            kind += f" (accepts {entry.accepts})"
        lines.append(f"**Type:** {kind} · **Default:** {inline_default(entry)}")
        lines += default_block(entry)
        lines += ["", entry.summary, "", entry.description]
    return "\n".join(lines) + "\n"


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if MARKER.search(source[0]):
        source[0] = MARKER.sub(lambda _: render(entries(docname)), source[0], count=1)
        app.env.anonauth_settings_docs = {*getattr(app.env, "anonauth_settings_docs", ()), docname}


def always_outdated(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Rebuilt every time: the page comes from code, which Sphinx does not track."""
    return sorted(getattr(env, "anonauth_settings_docs", ()))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", always_outdated)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
