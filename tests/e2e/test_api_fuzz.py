"""schemathesis fuzzes every operation of the HTTP API of `chargeledger up`, on the real
PostgreSQL: no answer may be a server error, and every answer must be one the OpenAPI documents
(status code, content type, headers and body schema).

Valid and invalid requests alike (schemathesis' positive and negative modes), a bounded number
of examples per operation, derandomized so that CI runs the same requests every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chargeledger.api.app import create_app
from chargeledger.core import db
from tests.support import Product

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

BODY_LIMIT = 65536

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    running = Product(
        data_dir, env={"CHARGELEDGER_MAX_REQUEST_BODY_BYTES": str(BODY_LIMIT)}
    ).start()
    yield running
    running.kill()
    db.stop_embedded(data_dir)


def _openapi() -> dict[str, Any]:
    """The OpenAPI the product serves, built here so that pytest collects one test per
    operation (building the app connects to nothing)."""
    nothing: Any = None
    app = create_app(
        nothing,
        log_name="postgres",
        check_log=nothing,
        registry=nothing,
        commands=nothing,
        local_list=nothing,
        tariffs=nothing,
        meter_keys=nothing,
        station_zones=nothing,
        reviews=nothing,
        max_request_body_bytes=BODY_LIMIT,
        api_auth=False,
    )
    return app.openapi()


OPENAPI = _openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)


def test_the_product_serves_the_openapi_fuzzed_here(product: Product) -> None:
    assert httpx.get(f"{product.api}/openapi.json").json() == OPENAPI


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_as_documented(case: OpenApiCase, product: Product) -> None:
    case.call_and_validate(base_url=product.api, checks=CHECKS, timeout=30)
