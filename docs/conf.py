"""Sphinx configuration of anonauth's documentation site (``make docs``).

Why these tools:

- **Sphinx**, because it can read the code: the settings reference is generated from
  ``anonauth.conf.Settings`` (every property, its default taken from a fresh
  ``Settings()``), and the HTTP API page from the OpenAPI schema drf-spectacular
  generates, both at build time (``docs/_ext/``), so neither can drift from the code.
- **furo**, a maintained theme that reads well on every screen size (light and dark),
  with a usable search and sidebar; many projects use it, Django packages among them
  (django-htmx, which STYLE.md points to, pip, Black), so it looks familiar.
- **myst-parser**, so that pages are Markdown like the README: every engineer can
  write them, and GitHub renders them too. Sphinx directives still work inside them
  (`` ```{graphviz} ``, ``{ref}``).

Django is set up with the tests' settings (``tests.settings``, SQLite in memory, no
database access needed), so the extensions and autodoc can import anonauth.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import version as package_version
from pathlib import Path

import django

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

project = "anonauth"
author = "anonauth developers"
copyright = "2026, anonauth developers"
release = package_version("anonauth")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.graphviz",
    "sphinx_copybutton",
    "anonauth_settings",  # docs/_ext: the settings reference from anonauth.conf
    "anonauth_api",  # docs/_ext: the HTTP API from the OpenAPI schema
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "screenshots"]
root_doc = "index"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links
suppress_warnings: list[str] = []

autodoc_typehints = "signature"
autodoc_member_order = "bysource"

graphviz_output_format = "svg"

html_theme = "furo"
html_title = f"anonauth {release}"
html_theme_options = {
    "source_repository": "https://github.com/anonauth/anonauth/",
    "source_branch": "main",
    "source_directory": "docs/",
}
copybutton_prompt_text = r"\$ "
copybutton_prompt_is_regexp = True
