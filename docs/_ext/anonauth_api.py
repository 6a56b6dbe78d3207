"""The HTTP API reference, generated from the OpenAPI schema at build time.

A page that contains the block

    ```{anonauth-api}
    ```

gets, in its place, every operation of the schema drf-spectacular generates for
``anonauth.urls`` alone (mounted at ``auth/anonymous/`` as in ``tests/urls_openapi.py``,
with the settings ``tests/test_openapi.py`` uses): method and path, summary, description,
authentication, request body, and each status with its body or its error ``code``
values and headers; then the schemas. The schema itself is written next to the page
as ``openapi.json``. What the schema says is what the schemathesis run checks the API
against, so this page and the API cannot disagree.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from django.test import override_settings
from sphinx.application import Sphinx

MARKER = re.compile(r"^```\{anonauth-api\}\n```\n", re.MULTILINE)
MOUNT = "auth/anonymous/"  # where the README and tests/urls_openapi.py mount it
SCHEMA_SETTINGS = override_settings(
    REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
)
# drf-spectacular reads SPECTACULAR_SETTINGS once, at import: these are patched in.
SPECTACULAR_PATCHES = {
    "TITLE": "anonauth",
    "VERSION": package_version("anonauth"),
    "SORT_OPERATIONS": False,  # urls.py's order
}
METHODS = ("get", "post", "put", "patch", "delete")
SCHEME_NAMES = {
    "sessionToken": "`X-Session-Token` header (app clients)",
    "sessionCookie": "session cookie (browsers; unsafe methods pass CSRF)",
}


def generate_schema() -> dict[str, Any]:
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings

    patterns = [path(MOUNT, include("anonauth.urls"))]  # anonauth's API alone
    with SCHEMA_SETTINGS, patched_settings(SPECTACULAR_PATCHES):
        schema: dict[str, Any] = SchemaGenerator(patterns=patterns).get_schema(
            request=None, public=True
        )
    # Round-trip through JSON: lazy translation strings become plain ones.
    loaded: dict[str, Any] = json.loads(json.dumps(schema, default=str))
    return loaded


def schema_ref(name: str) -> str:
    return f"{{ref}}`{name} <api-schema-{name.lower()}>`"


def type_of(schema: dict[str, Any]) -> str:
    """A short, readable type: ``string (email)``, ``User``, ``object of integer``."""
    if "$ref" in schema:
        text = schema_ref(schema["$ref"].rsplit("/", 1)[-1])
    elif "oneOf" in schema:
        text = " or ".join(type_of(option) for option in schema["oneOf"])
    elif schema.get("type") == "array":
        text = f"array of {type_of(schema.get('items', {}))}"
    elif schema.get("type") == "object" and "additionalProperties" in schema:
        text = f"object of {type_of(schema['additionalProperties'])}"
    else:
        text = schema.get("type", "any")
        if "format" in schema:
            text += f" ({schema['format']})"
    if schema.get("nullable"):
        text += " or null"
    return text


def one_line(text: str) -> str:
    return " ".join(text.split())


def constraints(schema: dict[str, Any]) -> str:
    notes = []
    if "maxLength" in schema:
        notes.append(f"at most {schema['maxLength']} characters")
    if "minimum" in schema:
        notes.append(f"≥ {schema['minimum']}")
    if schema.get("readOnly"):
        notes.append("read-only")
    if "enum" in schema:
        notes.append("one of " + ", ".join(f"`{value}`" for value in schema["enum"]))
    if "description" in schema:
        notes.append(one_line(schema["description"]))
    return "; ".join(notes)


def fields_table(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", ()))
    lines = ["| field | type | required | |", "|---|---|---|---|"]
    for name, field in schema.get("properties", {}).items():
        lines.append(
            f"| `{name}` | {type_of(field)} | {'yes' if name in required else 'no'} "
            f"| {constraints(field)} |"
        )
    return lines


def media_schema(response_or_body: dict[str, Any]) -> dict[str, Any] | None:
    content = response_or_body.get("content", {})
    if not content:
        return None
    schema: dict[str, Any] = next(iter(content.values()))["schema"]
    return schema


def error_codes(schema: dict[str, Any]) -> list[str] | None:
    """The ``code`` values of an inline ``{"code", "detail"}`` error body, else None."""
    code = schema.get("properties", {}).get("code", {})
    return list(code["enum"]) if "enum" in code and "detail" in schema["properties"] else None


def response_row(status: str, response: dict[str, Any]) -> str:
    schema = media_schema(response)
    headers = ", ".join(f"`{name}`" for name in response.get("headers", {}))
    description = one_line(response.get("description", ""))
    if schema is None:
        body = "no body"
    elif (codes := error_codes(schema)) is not None:
        body = "error: " + " / ".join(f"`{code}`" for code in codes)
        description = ""  # it only repeats the codes
        if "oneOf" in schema["properties"]["detail"]:
            body += " (`detail`: a message or the field errors)"
    else:
        body = type_of(schema)
    notes = "; ".join(part for part in (description, headers and f"header {headers}") if part)
    return f"| **{status}** | {body} | {notes} |"


def security(operation: dict[str, Any]) -> str:
    options = []
    for requirement in operation.get("security", []):
        options.append(
            " and ".join(SCHEME_NAMES.get(name, f"`{name}`") for name in requirement) or "none"
        )
    return "; or ".join(options) if options else "none"


def render_operation(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"({'api-' + operation['operationId']})=",
        f"### `{method.upper()} {path}`",
        "",
        f"**{operation.get('summary', '')}.**",
        "",
        operation.get("description", "").strip(),
        "",
        f"Authentication: {security(operation)}.",
    ]
    body = operation.get("requestBody")
    if body:
        schema = media_schema(body) or {}
        kinds = ", ".join(f"`{kind}`" for kind in body.get("content", {}))
        lines += ["", f"Request body: {type_of(schema)} ({kinds})."]
    lines += ["", "| status | body | |", "|---|---|---|"]
    for status, response in operation["responses"].items():
        lines.append(response_row(status, response))
    return lines


def render_schemas(components: dict[str, Any]) -> list[str]:
    lines = ["", "## Schemas", ""]
    for name, schema in sorted(components.get("schemas", {}).items()):
        lines += ["", f"(api-schema-{name.lower()})=", f"### `{name}`", ""]
        lines += [one_line(schema.get("description", "")), ""]
        lines += fields_table(schema)
    lines += ["", "## Authentication schemes", ""]
    lines += ["| scheme | where | |", "|---|---|---|"]
    for name, scheme in components.get("securitySchemes", {}).items():
        where = f"{scheme.get('in', '')} `{scheme.get('name', '')}`"
        lines.append(f"| `{name}` | {where} | {one_line(scheme.get('description', ''))} |")
    return lines


def render(schema: dict[str, Any]) -> str:
    lines = ["## Endpoints"]
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                lines += render_operation(path, method, item[method])
    lines += render_schemas(schema.get("components", {}))
    return "\n".join(lines) + "\n"


def on_source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    if not MARKER.search(source[0]):
        return
    schema = generate_schema()
    source[0] = MARKER.sub(lambda _: render(schema), source[0], count=1)
    app.env.anonauth_api_docs = {*getattr(app.env, "anonauth_api_docs", ()), docname}
    app.env.anonauth_api_schema = schema


def write_schema(app: Sphinx, exception: Exception | None) -> None:
    """``openapi.json`` beside the generated page, for download."""
    schema = getattr(app.env, "anonauth_api_schema", None)
    if exception is None and schema is not None and app.builder.format == "html":
        target = Path(app.outdir) / "openapi.json"
        target.write_text(json.dumps(schema, indent=2) + "\n")


def always_outdated(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Rebuilt every time: the schema comes from code, which Sphinx does not track."""
    return sorted(getattr(env, "anonauth_api_docs", ()))


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("source-read", on_source_read)
    app.connect("env-get-outdated", always_outdated)
    app.connect("build-finished", write_schema)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
