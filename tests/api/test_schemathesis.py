"""Property-based REST run over `/openapi.json` (schemathesis): no input makes the server fail.

Every operation gets schemathesis's examples, coverage (boundary and invalid values: huge
integers, NUL bytes, wrong types) and fuzzing phases, with a fixed seed, against a real
`tuiz serve` on loopback, once as an anonymous caller and once with the service key. The only
property asserted is the one every input must keep: the answer is not a 5xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, seed, settings

from tests.servers import ServerProcess, run_server
from tuiz.app import create_app
from tuiz.config import Settings

SERVICE_KEY = "schemathesis-service-key"
SEED = 20261202


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    with run_server(
        module_db_url,
        tmp,
        TUIZ_SERVICE_KEY=SERVICE_KEY,
        # the per-address limits would answer most of the run with 429 from one loopback client
        TUIZ_PIN_LOOKUP_LIMIT_PER_MIN="0",
        TUIZ_PIN_MISS_LIMIT_PER_MIN="0",
        TUIZ_JOIN_LIMIT_PER_MIN="0",
        TUIZ_CREATE_LIMIT_PER_MIN="0",
        TUIZ_AUTH_FAIL_LIMIT="1000000",  # generated bearer tokens are failed guesses too
    ) as s:
        yield s


def _openapi() -> dict[str, Any]:
    """The document `/openapi.json` serves, built without starting anything (collection time)."""
    app: Any = create_app(Settings(TUIZ_STORE="memory"))
    while not isinstance(app, FastAPI):  # under the ASGI wrappers: body limit, Socket.IO
        app = getattr(app, "other_asgi_app", None) or app.app
    document: dict[str, Any] = app.openapi()
    return document


schema = schemathesis.openapi.from_dict(_openapi())


def test_served_schema_is_the_one_tested(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/openapi.json").json() == _openapi()


RUN = settings(
    max_examples=5,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def _no_server_error(url: str, case: Any, headers: dict[str, str] | None = None) -> None:
    response = case.call(base_url=url, headers=headers, timeout=10)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
        f" -> {response.status_code} {response.text[:300]}"
    )


@schema.parametrize()
@seed(SEED)
@RUN
def test_no_server_errors_anonymous(server: ServerProcess, case: Any) -> None:
    _no_server_error(server.url, case)


@schema.parametrize()
@seed(SEED)
@RUN
def test_no_server_errors_service_role(server: ServerProcess, case: Any) -> None:
    _no_server_error(server.url, case, {"authorization": f"Bearer {SERVICE_KEY}"})
