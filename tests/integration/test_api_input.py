"""The HTTP API survives any input: the real app on the real PostgreSQL, over ASGI.

Every break of issue 12 (item 2) and the body limit (item 3) is reproduced here as a user
would send it; each answer must be a 4xx that names the field and says why.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from chargeledger.api.app import create_app
from chargeledger.core.log import PostgresLog
from chargeledger.gateway.authorization import TokenCache
from chargeledger.gateway.commands import CommandSender
from chargeledger.gateway.local_list_sync import LocalListSync
from chargeledger.invoicing.meter_key_store import MeterKeyStore
from chargeledger.invoicing.reviews import Reviews
from chargeledger.invoicing.station_zone_store import StationZoneStore
from chargeledger.invoicing.tariff_store import TariffStore
from chargeledger.registry.store import Registry

BODY_LIMIT = 256 * 1024  # the issue's tariff 100,000 levels deep is 200,000 bytes


def clock() -> datetime:
    return datetime.now(UTC)


def build_app(pool: AsyncConnectionPool, log: PostgresLog, **options: Any) -> FastAPI:
    commands = CommandSender(pool, log, clock)
    return create_app(
        pool,
        log_name=log.name,
        check_log=log.ping,
        registry=Registry(pool, log, clock),
        commands=commands,
        local_list=LocalListSync(pool, commands, clock),
        tariffs=TariffStore(pool, log, clock),
        meter_keys=MeterKeyStore(pool, log, clock),
        station_zones=StationZoneStore(pool, log, clock),
        reviews=Reviews(pool, log, clock),
        **{"api_auth": False, **options},
    )


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    yield log
    await log.close()


@pytest.fixture
async def api(pool: AsyncConnectionPool, log: PostgresLog) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(pool, log, max_request_body_bytes=BODY_LIMIT)
    # A 500 must come back as the answer a client gets, not as an exception in the test.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def problems(response: httpx.Response) -> list[tuple[str, str]]:
    """A 422's fields (as dotted paths) and reasons."""
    assert response.status_code == 422, (response.status_code, response.text)
    return [(".".join(map(str, d["loc"])), d["msg"]) for d in response.json()["detail"]]


async def test_an_expiry_in_year_one_bc_is_refused_and_one_stored_before_still_reads(
    api: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    # The issue's request: 0001-01-01T00:00:00+14:00 is 1 BC in UTC.
    refused = await api.post(
        "/api/v1/tokens", json={"id_token": "YEAR-1", "expires_at": "0001-01-01T00:00:00+14:00"}
    )
    [(field, why)] = problems(refused)
    assert field == "body.expires_at"
    assert "0001-01-02T00:00:00Z" in why and "9999-12-30" in why
    late = await api.post(
        "/api/v1/tokens", json={"id_token": "YEAR-9999", "expires_at": "9999-12-31T23:00:00-14:00"}
    )
    assert problems(late)[0][0] == "body.expires_at"
    assert (await api.get("/api/v1/tokens/YEAR-1")).status_code == 404

    # A row stored before the API checked (or fixed by hand): reading must not fail.
    created = await api.post("/api/v1/tokens", json={"id_token": "OLD-CARD"})
    assert created.status_code == 201
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE id_tokens SET expires_at = '0001-01-01 00:00:00+14'::timestamptz"
            " WHERE id_token = 'OLD-CARD'"
        )
    listed = await api.get("/api/v1/tokens")
    assert listed.status_code == 200, listed.text
    assert [t["expires_at"] for t in listed.json()] == ["0001-01-01T00:00:00Z"]
    assert (await api.get("/api/v1/tokens/OLD-CARD")).json()["expires_at"] == (
        "0001-01-01T00:00:00Z"
    )
    verdict = await TokenCache(pool, ttl_s=0, unknown_tokens="reject", clock=clock).verdict(
        "OLD-CARD"
    )
    assert verdict.status == "Expired"
    # And it can be fixed through the API, without SQL.
    fixed = await api.patch("/api/v1/tokens/OLD-CARD", json={"expires_at": "2030-01-01T00:00:00Z"})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["expires_at"] == "2030-01-01T00:00:00Z"


def _value(schema: dict[str, Any]) -> str:
    """A value a parameter of this schema accepts."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "null":
            continue
        if "enum" in option:
            return str(option["enum"][0])
        if option.get("format") == "date":
            return "2026-01-01"
        if option.get("format") == "date-time":
            return "2026-01-01T00:00:00Z"
        if option.get("type") == "integer":
            return str(max(1, option.get("minimum", 1)))
        if option.get("type") == "boolean":
            return "true"
        return "X"
    return "X"


def _string_parameters(openapi: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """Every (method, path, parameter, location) of a string parameter."""
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                kinds = {o.get("type") for o in schema.get("anyOf", [schema])}
                plain = "string" in kinds and "format" not in json.dumps(schema)
                if plain and "enum" not in json.dumps(schema):
                    yield method, path, parameter["name"], parameter["in"]


async def test_a_nul_in_any_path_or_query_parameter_is_a_422_naming_it(
    api: httpx.AsyncClient,
) -> None:
    openapi = (await api.get("/openapi.json")).json()
    checked = set()
    for method, path, name, where in _string_parameters(openapi):
        operation = openapi["paths"][path][method]
        query = {}
        url = path
        for parameter in operation.get("parameters", []):
            value = "%00" if parameter["name"] == name else _value(parameter["schema"])
            if parameter["in"] == "path":
                url = url.replace("{" + parameter["name"] + "}", value)
            elif parameter.get("required") or parameter["name"] == name:
                query[parameter["name"]] = value
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        body: dict[str, object] | None = {} if "requestBody" in operation else None
        answer = await api.request(method.upper(), url, json=body)
        found = problems(answer)
        assert found == [
            (
                "path" if where == "path" else f"query.{name}",
                "the URL path contains a NUL character (%00)"
                if where == "path"
                else "contains a NUL character (%00)",
            )
        ], (method, url)
        checked.add((method, path))
    # The issue counted 17 endpoints answering 500; every one with a string parameter is here.
    assert len(checked) >= 17, sorted(checked)
    assert ("get", "/api/v1/events") in checked


async def test_the_breaks_the_issue_lists_are_4xx_with_the_field_and_why(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/api/v1/stations", json={"station_id": "CP-KNOWN"})
    far = await api.get(
        "/api/v1/stations/CP-KNOWN/availability", params={"from": "9999-12-31", "to": "9999-12-31"}
    )
    assert problems(far) == [
        ("query.from", "Value error, must be from 0001-01-02 to 9999-12-30"),
        ("query.to", "Value error, must be from 0001-01-02 to 9999-12-30"),
    ]
    last_day = await api.get(
        "/api/v1/stations/CP-KNOWN/availability", params={"from": "9999-12-30", "to": "9999-12-30"}
    )
    assert last_day.status_code == 200 and last_day.json()[0]["day"] == "9999-12-30"

    revision = await api.get("/api/v1/tariffs/X", params={"revision": "1" * 31})
    assert problems(revision) == [
        ("query.revision", "Input should be less than or equal to 2147483647")
    ]

    deep = "[" * 100_000 + "]" * 100_000
    for content_type in ("application/json", "text/plain"):
        nested = await api.put(
            "/api/v1/tariffs/DEEP", content=deep, headers={"Content-Type": content_type}
        )
        assert problems(nested) == [("body", "nested deeper than 32 levels")]
    tariff = {"id": "DEEP", "extra": json.loads("[" * 40 + "]" * 40)}
    assert problems(await api.put("/api/v1/tariffs/DEEP", json=tariff)) == [
        ("body.extra." + ".".join(["0"] * 31), "nested deeper than 32 levels")
    ]

    nul = await api.post("/api/v1/tokens", json={"id_token": "ACC-NUL", "account_id": "a\x00b"})
    assert problems(nul) == [("body.account_id", "contains a NUL character (U+0000) at position 1")]
    surrogate = await api.post(
        "/api/v1/tokens",
        content=b'{"id_token": "ACC-SUR", "account_id": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert problems(surrogate)[0][0] == "body.account_id"
    assert "lone surrogate (U+D800)" in problems(surrogate)[0][1]
    infinite = await api.post(
        "/api/v1/stations/CP-KNOWN/commands",
        content=b'{"action": "Reset", "payload": {"type": "Soft", "x": 1e999}}',
        headers={"Content-Type": "application/json"},
    )
    assert problems(infinite) == [("body", "the number 1e999 is out of range")]
    column = await api.post("/api/v1/tariff-assignments", json={"tariff_id": "T", "evse_id": 2**31})
    assert problems(column) == [
        ("body.evse_id", "Input should be less than or equal to 2147483647")
    ]
    # Nothing of the above was stored.
    assert [t["id_token"] for t in (await api.get("/api/v1/tokens")).json()] == []


async def test_a_tariff_with_figures_or_times_beyond_what_is_stored_is_refused(
    api: httpx.AsyncClient,
) -> None:
    tariff = {
        "country_code": "DE",
        "party_id": "CLX",
        "id": "BIG",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 1e12, "step_size": 1}]}],
    }
    refused = await api.put("/api/v1/tariffs/BIG", json=tariff)
    assert refused.status_code == 422
    assert (
        "elements.0.price_components.0.price: must be at most 1,000,000,000"
        in (refused.json()["detail"])
    )
    tariff["elements"][0]["price_components"][0]["price"] = 0.39  # type: ignore[index]
    tariff["end_date_time"] = "0001-01-01T00:00:00+14:00"
    refused = await api.put("/api/v1/tariffs/BIG", json=tariff)
    assert refused.status_code == 422 and "end_date_time: must be from" in refused.json()["detail"]
    del tariff["end_date_time"]
    assert (await api.put("/api/v1/tariffs/BIG", json=tariff)).status_code == 201


async def test_a_body_above_the_limit_is_refused_while_it_arrives(
    api: httpx.AsyncClient,
) -> None:
    declared = await api.post(
        "/api/v1/tokens",
        content=b"x" * (BODY_LIMIT + 1),
        headers={"Content-Type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.json()["detail"] == (
        f"the request body is larger than {BODY_LIMIT} bytes (CHARGELEDGER_MAX_REQUEST_BODY_BYTES)"
    )

    sent = 0

    async def chunked() -> AsyncIterator[bytes]:  # 200 MiB without a Content-Length
        nonlocal sent
        for _ in range(200 * 16):
            sent += 1
            yield b" " * (64 * 1024)

    streamed = await api.post(
        "/api/v1/tokens", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    # Read up to the chunk that passes the limit, then refused: not the 200 MiB.
    assert sent == BODY_LIMIT // (64 * 1024) + 1, f"{sent} chunks of 64 KiB were read"
    # At the limit, a body is read as usual.
    padded = json.dumps({"id_token": "PADDED"}).ljust(BODY_LIMIT)
    accepted = await api.post(
        "/api/v1/tokens", content=padded, headers={"Content-Type": "application/json"}
    )
    assert accepted.status_code == 201, accepted.text


async def test_metrics_are_served_at_metrics_without_a_redirect(api: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/metrics/"):
        answer = await api.get(path, follow_redirects=False)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in answer.text


async def test_the_openapi_documents_the_answers_that_happen(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]

    def codes(path: str, method: str = "get") -> set[str]:
        return set(paths[path][method]["responses"])

    assert {"409", "502", "503", "504", "413", "422"} <= codes(
        "/api/v1/stations/{station_id}/commands", "post"
    )
    assert {"409", "413"} <= codes("/api/v1/stations/{station_id}/local-list/sync", "post")
    assert "404" in codes("/api/v1/stations/{station_id}/local-list")
    assert "503" in codes("/readyz")
    assert {"404", "422"} <= codes("/api/v1/tariffs/{tariff_id}")
    assert {"409", "413", "422"} <= codes("/api/v1/tokens", "post")
    assert {"404", "409"} <= codes("/api/v1/invoices/held/{session_id}/release", "post")
    assert "/metrics" in paths
    for path in ("/api/v1/tokens", "/api/v1/events", "/api/v1/sessions", "/api/v1/invoices"):
        assert set(paths[path]["get"]["responses"]["200"]["headers"]) == {"X-Next-After", "Link"}
