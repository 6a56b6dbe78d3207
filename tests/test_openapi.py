"""The OpenAPI schema (drf-spectacular) and a schemathesis run of the API against it.

Schemathesis generates requests from the schema for every operation, as three clients
(anonymous, a fresh guest, a registered user; the last two by ``X-Session-Token``, the
CSRF-exempt app-client credential), and checks that no answer is a 500 and that every
answer's status, content type, headers and body are the documented ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import werkzeug.test
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import DatabaseError, close_old_connections
from django.test import Client, override_settings
from drf_spectacular.management.commands import spectacular
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anonauth.test import make_registered_user
from anonauth.views import STATUS_BY_CODE

pytestmark = pytest.mark.django_db

SCHEMA_URL = "/api/schema/"
API = "/auth/anonymous/"
OPERATIONS = [
    ("POST", f"{API}sign-in/"),
    ("GET", f"{API}session/"),
    ("POST", f"{API}upgrade/"),
    ("POST", f"{API}link/"),
    ("POST", f"{API}delete/"),
    ("POST", f"{API}transfer/"),
    ("POST", f"{API}transfer/redeem/"),
    ("GET", f"{API}export/"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Codes DRF itself answers with (the rest are anonauth's, in ``STATUS_BY_CODE``).
DRF_STATUS_BY_CODE = {
    "invalid": 400,
    "parse_error": 400,
    "not_authenticated": 401,
    "csrf_failed": 403,
    "unsupported_media_type": 415,
}
MAX_EXAMPLES = 25
# A WSGI server on TCP always sets it; werkzeug's test client does not (see
# ``test_no_remote_addr``).
ENVIRON = {"REMOTE_ADDR": "127.0.0.1"}

openapi_settings = override_settings(
    ROOT_URLCONF="tests.urls_openapi",
    REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
    SPECTACULAR_SETTINGS={"SERVE_INCLUDE_SCHEMA": False, "TITLE": "anonauth"},
    # Raised so that sign-in, link and upgrade answer more than 429 (which stays
    # documented and is checked on its own below).
    ANONAUTH_RATE_LIMIT=None,
    ANONAUTH_LINK_RATE_LIMIT="10000/m",
    ANONAUTH_UPGRADE_RATE_LIMIT="10000/m",
    ANONAUTH_EXPORT_RATE_LIMIT="10000/m",
)


class Application:
    """The project's WSGI application, answering inside the test's database transaction.

    Django closes "old" connections when a request starts and when its response is
    closed: inside a test transaction that would end it (on PostgreSQL). Django's test
    client switches that off around each request; so does this, which also closes the
    response itself, within the request.
    """

    def __init__(self) -> None:
        self.handler = WSGIHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = self.handler(environ, start_response)
            content = b"".join(response)
            response.close()
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)
        return [content]


@pytest.fixture
def app() -> Iterator[Application]:
    with openapi_settings:
        yield Application()


@pytest.fixture
def api_schema(app: Application) -> Any:
    """The schema as the API serves it, loaded by schemathesis."""
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, app, environ_base=ENVIRON)


def guest_token() -> str:
    """The session token of a new guest (an app client: no cookies)."""
    response = Client().post(f"{API}sign-in/")
    assert response.status_code == 201, response.content
    token: str = response.json()["session_token"]
    return token


def member_token() -> str:
    """The session token of a new registered user."""
    client = Client()
    client.force_login(make_registered_user(email=f"member-{os.urandom(4).hex()}@example.com"))
    return client.cookies["sessionid"].value


def anonymous() -> dict[str, str]:
    return {}


def as_guest() -> dict[str, str]:
    return {"X-Session-Token": guest_token()}


def as_member() -> dict[str, str]:
    return {"X-Session-Token": member_token()}


CLIENTS: dict[str, Callable[[], dict[str, str]]] = {
    "anonymous": anonymous,
    "guest": as_guest,
    "member": as_member,
}


def run_schemathesis(
    operation: Any, app: Application, headers: Callable[[], dict[str, str]], mode: GenerationMode
) -> set[int]:
    """Generate up to ``MAX_EXAMPLES`` requests for ``operation``, send each one, check its
    answer; return the statuses seen."""
    seen: set[int] = set()
    checks = [*CHECKS, negative_data_rejection] if mode.is_negative else CHECKS

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        # A form field is always text: a negative case's number, null or object reaches
        # a form or multipart body as its JSON text, a valid string (``null`` is a fine
        # password). Type violations exist in JSON bodies only, so only those are sent.
        assume(not mode.is_negative or case.media_type in (None, "application/json"))
        response = case.call_and_validate(
            app=app, headers=headers(), checks=checks, environ_base=ENVIRON
        )
        seen.add(response.status_code)

    check()
    return seen


# The statuses each run must reach at least, so that it is known to get past the
# authentication and permission checks (schemathesis also sends random session tokens
# and cookies of its own: hence 401 and 403 ``csrf_failed`` for every client).
REACHED: dict[tuple[str, str], set[int]] = {
    ("sign-in/", "anonymous"): {201},
    ("sign-in/", "guest"): {200},
    ("sign-in/", "member"): {409},
    ("session/", "anonymous"): {401},
    ("session/", "guest"): {200},
    ("session/", "member"): {200},
    ("upgrade/", "anonymous"): {401},
    # Blank fields, the 400s it reached, are documented as invalid now (``minLength``):
    # the negative run sends them.
    ("upgrade/", "guest"): {200},
    ("upgrade/", "member"): {403},
    ("link/", "anonymous"): {401},
    ("link/", "guest"): {400},
    ("link/", "member"): {403},
    ("delete/", "anonymous"): {401},
    ("delete/", "guest"): {204},
    ("delete/", "member"): {403},
    ("transfer/", "anonymous"): {401},
    ("transfer/", "guest"): {201},
    ("transfer/", "member"): {403},
    ("transfer/redeem/", "anonymous"): {400},
    ("transfer/redeem/", "guest"): {409},
    ("transfer/redeem/", "member"): {409},
    ("export/", "anonymous"): {401},
    ("export/", "guest"): {200},
    ("export/", "member"): {200},
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[path for _, path in OPERATIONS])
def test_schemathesis(
    api_schema: Any, app: Application, method: str, path: str, client: str
) -> None:
    operation = api_schema[path][method]
    seen = run_schemathesis(operation, app, CLIENTS[client], GenerationMode.POSITIVE)
    assert REACHED[path.removeprefix(API), client] <= seen


@pytest.mark.parametrize("client", CLIENTS)
# Not sign-in/: its body is optional and every field of it too, so a form body the
# generator breaks (``[]`` as multipart) is an empty one, which signs in (201); its bad
# metadata is answered in TestDocumentedAnswers.
@pytest.mark.parametrize("path", [f"{API}upgrade/", f"{API}link/", f"{API}transfer/redeem/"])
def test_schemathesis_negative(api_schema: Any, app: Application, path: str, client: str) -> None:
    """Bodies that break the schema (only these operations take one) are rejected."""
    seen = run_schemathesis(api_schema[path]["POST"], app, CLIENTS[client], GenerationMode.NEGATIVE)
    rejected = {400, 401, 403, 415}
    if path.endswith("redeem/") and client != "anonymous":
        # A signed-in client is refused before its body is read (documented 409).
        rejected.add(409)
    assert seen <= rejected, seen


# Each sign-in answer links its ``session_token`` to the ``X-Session-Token`` header of
# the operations an app client goes on with; upgrade's and link's to the session.
LINKS = {
    ("POST", "sign-in/", "201"): {"signIn", "session", "upgrade", "link", "delete"},
    ("POST", "sign-in/", "200"): {"signIn", "session", "upgrade", "link", "delete"},
    ("POST", "upgrade/", "200"): {"session"},
    ("POST", "link/", "200"): {"session"},
}
LINK_TARGETS = {
    "signIn": ("POST", "sign-in/"),
    "session": ("GET", "session/"),
    "upgrade": ("POST", "upgrade/"),
    "link": ("POST", "link/"),
    "delete": ("POST", "delete/"),
}
STATEFUL_SETTINGS = hypothesis_settings(
    max_examples=15,
    stateful_step_count=6,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def test_links(api_schema: Any) -> None:
    raw = api_schema.raw_schema["paths"]
    operation_ids = {
        (method.upper(), path.removeprefix(API)): operation["operationId"]
        for path, item in raw.items()
        for method, operation in item.items()
    }
    for (method, path, status), names in LINKS.items():
        links = raw[f"{API}{path}"][method.lower()]["responses"][status]["links"]
        assert set(links) == names
        for name, link in links.items():
            assert link["operationId"] == operation_ids[LINK_TARGETS[name]]
            assert link["parameters"] == {"header.X-Session-Token": "$response.body#/session_token"}
    linked = {
        (method.upper(), path.removeprefix(API), status)
        for path, item in raw.items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if "links" in response
    }
    assert linked == set(LINKS)


def test_schemathesis_stateful(api_schema: Any, app: Application) -> None:
    """Schemathesis' stateful phase: sequences of calls along the links (sign in, then go
    on with the session token), each answer checked like the stateless ones."""
    steps: list[tuple[str, int, bool]] = []

    class Machine(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"app": app, "environ_base": ENVIRON}

        def step(self, input: Any) -> Any:
            output = super().step(input)
            linked = input.transition is not None and input.is_applied
            steps.append((input.case.operation.label, output.response.status_code, linked))
            return output

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs=kwargs or None, recorder=self.recorder
            )

    Machine.run(settings=STATEFUL_SETTINGS)
    assert steps
    assert all(status < 500 for _, status, _ in steps)
    followed = {(label, status) for label, status, linked in steps if linked}
    # The links were followed with a token that authenticates.
    assert (f"GET {API}session/", 200) in followed, followed


def call_and_validate(
    api_schema: Any, app: Application, label: str, checks: list[Any] = CHECKS, **case: Any
) -> Any:
    """Send one request written by hand and check its answer like the generated ones."""
    method, path = label.split(" ")
    operation = api_schema[f"{API}{path}"][method]
    if "body" in case:
        case.setdefault("media_type", "application/json")
    return operation.Case(**case).call_and_validate(app=app, checks=checks, environ_base=ENVIRON)


class TestDocumentedAnswers:
    """The answers random inputs do not reach, sent by hand and checked against the schema."""

    def test_upgrade(self, api_schema: Any, app: Application) -> None:
        body = {"email": "ada@example.com", "password": "correct-horse-42"}
        response = call_and_validate(
            api_schema, app, "POST upgrade/", headers=as_guest(), body=body
        )
        assert response.status_code == 200
        assert response.json()["user"]["is_guest"] is False

    def test_upgrade_email_in_use(self, api_schema: Any, app: Application) -> None:
        make_registered_user(email="ada@example.com")
        body = {"email": "ada@example.com", "password": "correct-horse-42"}
        response = call_and_validate(
            api_schema, app, "POST upgrade/", headers=as_guest(), body=body
        )
        assert (response.status_code, response.json()["code"]) == (409, "email_in_use")

    @override_settings(
        AUTH_PASSWORD_VALIDATORS=[
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
            {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
        ]
    )
    def test_upgrade_password_invalid(self, api_schema: Any, app: Application) -> None:
        body = {"email": "ada@example.com", "password": "123"}
        response = call_and_validate(
            api_schema, app, "POST upgrade/", headers=as_guest(), body=body
        )
        assert (response.status_code, response.json()["code"]) == (400, "password_invalid")
        assert len(response.json()["detail"]) == 2

    def test_upgrade_missing_field(self, api_schema: Any, app: Application) -> None:
        body = {"email": "ada@example.com"}
        response = call_and_validate(
            api_schema, app, "POST upgrade/", headers=as_guest(), body=body
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid")

    def test_link(self, api_schema: Any, app: Application) -> None:
        make_registered_user(email="ada@example.com", password="correct-horse-42")
        body = {"login": "ada@example.com", "password": "correct-horse-42"}
        response = call_and_validate(api_schema, app, "POST link/", headers=as_guest(), body=body)
        assert response.status_code == 200
        assert response.json()["user"]["is_guest"] is False

    @override_settings(ANONAUTH_LINK_CONFLICTS={"linkapp.Profile.user": "error"})
    def test_link_conflict(self, api_schema: Any, app: Application) -> None:
        from tests.linkapp.models import Profile

        account = make_registered_user(email="ada@example.com", password="correct-horse-42")
        Profile.objects.create(user=account, nickname="ada")
        headers = as_guest()
        guest = Client(HTTP_X_SESSION_TOKEN=headers["X-Session-Token"]).get(f"{API}session/")
        Profile.objects.create(user_id=guest.json()["user"]["id"], nickname="guest")
        body = {"login": "ada@example.com", "password": "correct-horse-42"}
        response = call_and_validate(api_schema, app, "POST link/", headers=headers, body=body)
        assert (response.status_code, response.json()["code"]) == (409, "link_conflict")

    @override_settings(ANONAUTH_LINK_RATE_LIMIT="1/m")
    def test_link_rate_limited(self, api_schema: Any, app: Application) -> None:
        body = {"login": "ada@example.com", "password": "wrong"}
        call_and_validate(api_schema, app, "POST link/", headers=as_guest(), body=body)
        response = call_and_validate(api_schema, app, "POST link/", headers=as_guest(), body=body)
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
        assert int(response.headers["retry-after"][0]) >= 1

    def test_sign_in_rate_limited(self, api_schema: Any, app: Application) -> None:
        with override_settings(ANONAUTH_RATE_LIMIT="1/m"):
            assert call_and_validate(api_schema, app, "POST sign-in/").status_code == 201
            response = call_and_validate(api_schema, app, "POST sign-in/")
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")

    def test_sign_in_with_metadata(self, api_schema: Any, app: Application) -> None:
        body = {"metadata": {"utm_campaign": "spring", "ab": [1, 2]}}
        response = call_and_validate(api_schema, app, "POST sign-in/", body=body)
        assert response.status_code == 201
        assert response.json()["user"]["metadata"] == body["metadata"]

    @pytest.mark.parametrize(
        ("metadata", "code"),
        [
            ([1], "metadata_invalid"),
            ({"a": {"b": {"c": [1]}}}, "metadata_too_deep"),
            ({"a": "x" * 2000}, "metadata_too_large"),
        ],
    )
    def test_sign_in_bad_metadata(
        self, api_schema: Any, app: Application, metadata: Any, code: str
    ) -> None:
        response = call_and_validate(api_schema, app, "POST sign-in/", body={"metadata": metadata})
        assert (response.status_code, response.json()["code"]) == (400, code)

    @override_settings(ANONAUTH_ENABLED=False)
    def test_sign_in_disabled(self, api_schema: Any, app: Application) -> None:
        response = call_and_validate(api_schema, app, "POST sign-in/")
        assert (response.status_code, response.json()["code"]) == (403, "disabled")

    @override_settings(ANONAUTH_CAPTCHA_VERIFIER="tests.testapp.captcha.verify")
    def test_sign_in_captcha_failed(self, api_schema: Any, app: Application) -> None:
        response = call_and_validate(api_schema, app, "POST sign-in/")
        assert (response.status_code, response.json()["code"]) == (400, "captcha_failed")

    def test_delete_blocked(self, api_schema: Any, app: Application) -> None:
        from tests.linkapp.models import Invoice

        headers = as_guest()
        guest = Client(HTTP_X_SESSION_TOKEN=headers["X-Session-Token"]).get(f"{API}session/")
        Invoice.objects.create(customer_id=guest.json()["user"]["id"], amount=1)
        response = call_and_validate(api_schema, app, "POST delete/", headers=headers)
        assert (response.status_code, response.json()["code"]) == (409, "deletion_blocked")

    def test_unavailable(
        self, api_schema: Any, app: Application, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise DatabaseError("the database is down")

        monkeypatch.setattr("anonauth.guests.sign_in_new_guest", fail)
        # A 503 is a server error by design here: every check but that one.
        checks = [check for check in CHECKS if check is not not_a_server_error]
        response = call_and_validate(api_schema, app, "POST sign-in/", checks=checks)
        assert (response.status_code, response.json()["code"]) == (503, "unavailable")

    @override_settings(ANONAUTH_EXPORT_RATE_LIMIT="1/m")
    def test_export_rate_limited(self, api_schema: Any, app: Application) -> None:
        headers = as_member()
        assert call_and_validate(api_schema, app, "GET export/", headers=headers).status_code == 200
        response = call_and_validate(api_schema, app, "GET export/", headers=headers)
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")

    def test_export_unavailable(
        self, api_schema: Any, app: Application, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        headers = as_guest()

        def down() -> Any:
            raise DatabaseError("the database is down")

        monkeypatch.setattr("anonauth.export.db.guests", down)
        checks = [check for check in CHECKS if check is not not_a_server_error]
        response = call_and_validate(api_schema, app, "GET export/", headers=headers, checks=checks)
        assert (response.status_code, response.json()["code"]) == (503, "unavailable")

    def test_unsupported_media_type(self, api_schema: Any, app: Application) -> None:
        headers = {**as_guest(), "Content-Type": "text/plain"}
        response = call_and_validate(
            api_schema, app, "POST link/", headers=headers, body="x", media_type="text/plain"
        )
        assert (response.status_code, response.json()["code"]) == (415, "unsupported_media_type")


def test_schema_lists_the_operations(api_schema: Any) -> None:
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert labels == {f"{method} {path}" for method, path in OPERATIONS}


def test_error_statuses_match_the_api(api_schema: Any) -> None:
    """Every documented ``code`` is answered with the status it is documented under."""
    status_by_code = {**STATUS_BY_CODE, **DRF_STATUS_BY_CODE}
    for path_item in api_schema.raw_schema["paths"].values():
        for operation in path_item.values():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                codes = response["content"]["application/json"]["schema"]["properties"]["code"]
                assert {status_by_code[code] for code in codes["enum"]} == {int(status)}


REQUIRED_FIELDS = {
    "upgrade/": {"email", "password"},
    "link/": {"login", "password"},
    "transfer/redeem/": {"code"},
}


@pytest.mark.parametrize("split_request", [False, True], ids=["default", "split-request"])
def test_required_fields_are_not_blank(split_request: bool) -> None:
    """Every required string of a request body is ``minLength: 1`` (a blank one is a 400),
    whatever drf-spectacular adds on its own (only with ``COMPONENT_SPLIT_REQUEST``)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings

    with openapi_settings, patched_settings({"COMPONENT_SPLIT_REQUEST": split_request}):
        schema = SchemaGenerator(urlconf="tests.urls_openapi").get_schema(public=True)
    components = schema["components"]["schemas"]
    assert ("UpgradeRequest" in components) is split_request
    for path, fields in REQUIRED_FIELDS.items():
        body = schema["paths"][f"{API}{path}"]["post"]["requestBody"]["content"]
        for media_type in body.values():
            ref = media_type["schema"]["$ref"].removeprefix("#/components/schemas/")
            component = components[ref]
            assert set(component["required"]) == fields
            for field in fields:
                assert component["properties"][field]["type"] == "string"
                assert component["properties"][field]["minLength"] == 1, (path, field)


def test_rate_limited_answers_document_retry_after(api_schema: Any) -> None:
    paths = api_schema.raw_schema["paths"]
    for path in (f"{API}sign-in/", f"{API}link/"):
        assert "Retry-After" in paths[path]["post"]["responses"]["429"]["headers"]


def test_security_schemes(api_schema: Any) -> None:
    schemes = api_schema.raw_schema["components"]["securitySchemes"]
    assert schemes["sessionToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Session-Token",
        "description": schemes["sessionToken"]["description"],
    }
    assert (schemes["cookieAuth"]["in"], schemes["cookieAuth"]["name"]) == (
        "cookie",
        "sessionid",
    )


def test_schema_is_valid_without_warnings(tmp_path: Any) -> None:
    with openapi_settings:
        call_command(
            spectacular.Command(),
            "--validate",
            "--fail-on-warn",
            "--urlconf=tests.urls_openapi",
            f"--file={tmp_path / 'schema.yaml'}",
        )
    assert "/auth/anonymous/upgrade/" in (tmp_path / "schema.yaml").read_text()


def test_anonauth_works_without_drf_spectacular() -> None:
    """The extra is optional: with drf_spectacular unimportable the API still loads."""
    code = (
        "import sys; sys.modules['drf_spectacular'] = None\n"
        "import django; django.setup()\n"
        "from anonauth import schema, views\n"
        "assert not schema.HAS_SPECTACULAR\n"
        "print(views.SignInView.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SignInView"


@override_settings(ANONAUTH_RATE_LIMIT="1/m")
def test_no_remote_addr(app: Application) -> None:
    """A server on a Unix socket passes no REMOTE_ADDR: such requests share one count."""
    first = werkzeug.test.Client(app).post(f"{API}sign-in/")
    second = werkzeug.test.Client(app).post(f"{API}sign-in/")
    assert (first.status_code, second.status_code) == (201, 429)
    assert second.get_json()["code"] == "rate_limited"


def test_project_views_document_the_session_token_and_one_cookie_scheme() -> None:
    """The ``X-Session-Token`` header lived in the middleware, invisible to project views'
    schema, and the session cookie was listed twice (anonauth's and DRF's schemes)."""
    from drf_spectacular.generators import SchemaGenerator

    with openapi_settings:
        schema = SchemaGenerator(urlconf="tests.pathsapp.urls_openapi").get_schema(public=True)
    schemes = schema["components"]["securitySchemes"]
    cookie_schemes = [name for name, scheme in schemes.items() if scheme.get("in") == "cookie"]
    assert cookie_schemes == ["cookieAuth"]
    security = schema["paths"]["/project/"]["get"]["security"]
    assert {"sessionToken": []} in security
    assert {"cookieAuth": []} in security
