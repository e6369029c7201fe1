"""The console in a real browser: Debian's Chromium driven by Playwright, against `chargeledger
up` with access checking on and real OCPP traffic from test stations. Each test walks a path a
user takes and saves a screenshot of every page it shows (test-artifacts/console/, or
$CHARGELEDGER_TEST_ARTIFACTS/console/); docs/console.md shows them."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import async_api as playwright_api
from playwright.async_api import expect

from tests.support import OcppClient, Product, eventually

CLI = [sys.executable, "-m", "chargeledger.cli"]
PASSWORD = "correct-horse-battery-staple"
USERS = {"ada": "admin", "fiona": "finance", "vic": "viewer", "otto": "operator"}
ARTIFACTS = Path(os.environ.get("CHARGELEDGER_TEST_ARTIFACTS", "test-artifacts")) / "console"
# The browser is Debian's package; Playwright never downloads one.
CHROMIUM = os.environ.get("CHARGELEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 20_000


def chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        message = "the browser tests need Chromium: apt-get install chromium (Debian's package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("console") / "data"
    for name, role in USERS.items():
        add = ["users", "add", name, "--role", role, "--password-stdin"]
        made = subprocess.run(
            [*CLI, *add, "--data-dir", str(data_dir)],
            input=PASSWORD,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
    reader = [*CLI, "api-tokens", "create", "--name", "test", "--role", "admin"]
    made = subprocess.run(
        [*reader, "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    running = Product(data_dir, api_auth=True)
    running.token = made.stdout.strip().splitlines()[-1]
    running.start().follow_output()
    yield running
    running.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    executable = chromium()
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def logged_in(browser: Any, product: Product, name: str, viewport: Any = WIDE) -> Any:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(f"{product.api}/")
    await page.get_by_label("User name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "fleet", timeout=WAIT_MS)
    return page


async def show(page: Any, product: Product, route: str, name: str, *, reload: bool = False) -> None:
    """Open a page of the console by its address and wait until it has drawn its data."""
    await page.goto(f"{product.api}/#{route}")
    if reload:
        await page.reload()
    body = page.locator("body")
    await expect(body).to_have_attribute("data-route", f"#{route}", timeout=WAIT_MS)
    await expect(body).to_have_attribute("data-ready", name, timeout=WAIT_MS)


async def until_shown(
    page: Any, product: Product, route: str, name: str, selector: str, text: str
) -> None:
    """Reload a page until it shows ``text`` (what the projections have not written yet)."""
    for _ in range(60):
        await show(page, product, route, name, reload=True)
        if text in await page.locator(selector).inner_text():
            return
        await page.wait_for_timeout(500)
    raise AssertionError(f"{route} never showed {text!r} in {selector}")


async def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.errors == [], page.errors


def power(tx: int, at: str, wh: int, w: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [
                    {"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
                    {"value": str(w), "unit": "W", "measurand": "Power.Active.Import"},
                ],
            }
        ],
    }


async def answer_next_call(client: OcppClient, payload: dict[str, Any]) -> list[Any]:
    """Answer the next CALL the central system sends to the station; returns that CALL."""
    message = json.loads(await client.websocket.recv())
    assert message[0] == 2, message
    await client.websocket.send(json.dumps([3, message[1], payload]))
    return list(message)


async def charge(product: Product, station_id: str, readings: list[tuple[str, int, int]]) -> int:
    """One 1.6 session: the readings are (time, register Wh, power W); it starts at the first
    and stops at the last."""
    client = await OcppClient.connect(product.ocpp_port, station_id)
    await client.call("b", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    first, last = readings[0], readings[-1]
    start = {"connectorId": 1, "idTag": "TAG-1", "meterStart": first[1], "timestamp": first[0]}
    tx = int((await client.call("s", "StartTransaction", start))["transactionId"])
    for n, (at, wh, w) in enumerate(readings[1:-1]):
        await client.call(f"m{n}", "MeterValues", power(tx, at, wh, w))
    stop = {"transactionId": tx, "meterStop": last[1], "timestamp": last[0], "reason": "Local"}
    await client.call("e", "StopTransaction", stop)
    await client.close()
    return tx


async def test_a_station_appears_on_the_fleet_page_and_its_status_changes_live(
    product: Product, browser: Any
) -> None:
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    await page.goto(f"{product.api}/")
    await expect(page.get_by_role("heading", name="Log in to ChargeLedger")).to_be_visible()
    await page.get_by_label("User name").fill("ada")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#login-error")).to_have_text("wrong user name or password")
    await shoot_login(page)
    await context.close()

    # From the keyboard alone: the name field has the focus, Tab to the password, Enter.
    context = await browser.new_context(viewport=WIDE)
    page = await context.new_page()
    page.errors = []
    await page.goto(f"{product.api}/")
    await expect(page.get_by_label("User name")).to_be_focused()
    await page.keyboard.type("ada")
    await page.keyboard.press("Tab")
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.locator("body")).to_have_attribute("data-ready", "fleet", timeout=WAIT_MS)
    await expect(page.locator("#who")).to_have_text("ada (admin)")
    client = await OcppClient.connect(product.ocpp_port, "CP-LIVE")
    await client.call(
        "1", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "X"}
    )
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    await client.call("2", "StatusNotification", status)
    row = page.locator("#fleet tbody tr", has_text="CP-LIVE")
    # No reload: the page refreshes itself.
    await expect(row).to_contain_text("Online", timeout=WAIT_MS)
    await expect(row).to_contain_text("Available", timeout=WAIT_MS)
    faulted = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
    await client.call("3", "StatusNotification", faulted)
    await expect(row).to_contain_text("Faulted", timeout=WAIT_MS)
    await expect(row).to_contain_text("1 fault", timeout=WAIT_MS)
    await shoot(page, "fleet")

    await page.get_by_label("Faults").select_option("false")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#fleet")).not_to_contain_text("CP-LIVE", timeout=WAIT_MS)
    await show(page, product, "/?fault=true", "fleet")
    await expect(page.locator("#fleet")).to_contain_text("CP-LIVE")

    await page.get_by_role("link", name="CP-LIVE").click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "station", timeout=WAIT_MS)
    await expect(page.locator("#connectors")).to_contain_text("Faulted")
    # An admin may send commands, and sees the station's answer.
    asked = asyncio.create_task(answer_next_call(client, {"status": "Accepted"}))
    await page.get_by_role("button", name="Send Reset").click()
    call = await asyncio.wait_for(asked, 30)
    assert call[2:] == ["Reset", {"type": "Soft"}], call
    await expect(page.locator("#command-answer")).to_contain_text("Reset: Answered")
    await expect(page.locator("#command-answer")).to_contain_text('"status": "Accepted"')
    await client.close()
    await shoot(page, "station")

    phone = await logged_in(browser, product, "ada", viewport=PHONE)
    await expect(phone.locator("#fleet")).to_contain_text("CP-LIVE", timeout=WAIT_MS)
    await shoot(phone, "fleet-phone")


async def shoot_login(page: Any) -> None:
    page.errors = []
    await shoot(page, "login")


async def test_a_finished_session_shows_its_curve_and_its_invoice_leads_to_the_frames(
    product: Product, browser: Any
) -> None:
    tx = await charge(
        product,
        "CP-CURVE",
        [
            ("2026-05-02T10:00:00Z", 100_000, 0),
            ("2026-05-02T10:15:00Z", 102_750, 11_000),
            ("2026-05-02T10:30:00Z", 105_500, 11_000),
            ("2026-05-02T10:45:00Z", 106_400, 3_600),
            ("2026-05-02T11:00:00Z", 106_400, 0),
        ],
    )
    session_id = f"CP-CURVE:{tx}"
    eventually(
        lambda: product.get("/api/v1/invoices", session_id=session_id) or None,
        30,
        "the session's invoice",
    )
    page = await logged_in(browser, product, "ada")
    await show(page, product, "/sessions?station_id=CP-CURVE", "sessions")
    await shoot(page, "sessions")
    await page.get_by_role("link", name=session_id).click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "session", timeout=WAIT_MS)
    await expect(page.locator("#session-energy")).to_contain_text("6.400 kWh")
    curve = page.locator("svg#curve")
    await expect(curve.locator("polyline.power")).to_have_count(1)
    await expect(curve.locator("polyline.energy")).to_have_count(1)
    assert await curve.locator("rect.charging").count() >= 1
    label = await curve.get_attribute("aria-label")
    assert label == "Charging curve: power up to 11000 W, 6.400 kWh charged", label
    await expect(page.locator("#frames")).to_contain_text("StartTransaction")
    await shoot(page, "session")

    invoice = page.get_by_role("region", name="Invoices").get_by_role("link")
    number = (await invoice.inner_text()).strip()
    await invoice.click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "invoice", timeout=WAIT_MS)
    await expect(page.locator("#invoice-total")).to_contain_text("EUR incl. VAT")
    await shoot(page, "invoice")
    await page.get_by_role("link", name="CDR").click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "cdr", timeout=WAIT_MS)
    await expect(page.locator("#cdr")).to_contain_text('"total_energy"')
    await page.get_by_role("link", name="Session and frames").click()
    await expect(page.locator("body")).to_have_attribute("data-ready", "evidence", timeout=WAIT_MS)
    frames = page.locator("#frames tbody tr")
    await expect(frames.first).to_contain_text("StartTransaction")
    await expect(frames.last).to_contain_text("StopTransaction")
    await expect(page.get_by_role("heading", name=f"Evidence of {number}")).to_be_visible()
    await shoot(page, "evidence")
    await show(page, product, "/invoices", "invoices")
    await expect(page.locator("#invoices")).to_contain_text(number)
    await expect(page.locator("#totals")).to_contain_text("EUR")
    await shoot(page, "invoices")
    await show(page, product, "/energy?group_by=day&from=2026-05-01&to=2026-05-04", "energy")
    await expect(page.locator("#energy")).to_contain_text("2026-05-02")
    await expect(page.locator("#energy")).to_contain_text("6.400 kWh")
    csv = await page.request.get(
        f"{product.api}/api/v1/energy.csv?group_by=day&from=2026-05-01T00:00:00Z"
    )
    assert csv.status == 200 and (await csv.text()).startswith("day,energy_wh,sessions\n")
    await shoot(page, "energy")


async def held_session(product: Product, station_id: str) -> str:
    """A session whose meter went backwards: held for review, not invoiced."""
    tx = await charge(
        product,
        station_id,
        [
            ("2026-05-03T10:00:00Z", 1_000, 0),
            ("2026-05-03T10:20:00Z", 5_000, 7_000),
            ("2026-05-03T10:40:00Z", 3_000, 7_000),
            ("2026-05-03T11:00:00Z", 6_000, 0),
        ],
    )
    session_id = f"{station_id}:{tx}"
    eventually(
        lambda: (
            [h for h in product.get("/api/v1/invoices/held") if h["session_id"] == session_id]
            or None
        ),
        30,
        "the held session",
    )
    return session_id


async def test_finance_releases_a_held_session_and_its_invoice_appears(
    product: Product, browser: Any
) -> None:
    session_id = await held_session(product, "CP-HELD")
    page = await logged_in(browser, product, "fiona")
    await show(page, product, "/review", "review")
    row = page.locator("#held tbody tr", has_text=session_id)
    await expect(row).to_contain_text("meter_went_backwards")
    await shoot(page, "review")
    await row.get_by_label("Note").fill("meter swapped on site, figures checked")
    await row.get_by_role("button", name="Release").click()
    await expect(page.locator("#toast")).to_contain_text(f"{session_id}: released")
    await until_shown(page, product, "/review", "review", "#decisions", "user:fiona")
    await expect(page.locator("#decisions")).to_contain_text("meter swapped on site")
    await until_shown(page, product, f"/sessions/{session_id}", "session", "#h-inv + *", "CL-")
    links = page.get_by_role("region", name="Invoices").get_by_role("link")
    await expect(links).to_have_count(1)
    await show(page, product, "/review", "review")
    await expect(page.locator("#held")).not_to_contain_text(session_id)


async def test_a_tariff_with_an_error_is_refused_with_the_field_and_a_preview_prices(
    product: Product, browser: Any
) -> None:
    page = await logged_in(browser, product, "fiona")
    await show(page, product, "/tariffs", "tariffs")
    wrong = (
        '{"country_code": "DE", "party_id": "CLG", "id": "NIGHT", "currency": "EUR",'
        ' "elements": [{"price_components": [{"type": "ENERGY", "price": "cheap",'
        ' "step_size": 1}]}]}'
    )
    await page.get_by_label("Tariff JSON", exact=True).fill(wrong)
    await page.get_by_role("button", name="Store tariff").click()
    errors = page.locator("#tariff-errors")
    await expect(errors).to_contain_text("elements[0].price_components[0].price")
    await expect(page.get_by_label("Tariff JSON", exact=True)).to_have_class("field-error")
    await page.locator("#upload").scroll_into_view_if_needed()
    await shoot(page, "tariff-error")
    fixed = wrong.replace('"cheap"', "0.30")
    await page.get_by_label("Tariff JSON", exact=True).fill(fixed)
    await page.get_by_role("button", name="Store tariff").click()
    await expect(page.locator("#upload-result")).to_contain_text("Stored NIGHT revision 1")
    await until_shown(page, product, "/tariffs", "tariffs", "#tariffs", "NIGHT")
    await page.locator("#p-tariff").select_option("NIGHT")
    await page.get_by_label("Energy (Wh)").fill("10000")
    await page.get_by_role("button", name="Price it").click()
    await expect(page.locator("#preview-lines")).to_contain_text("Energy")
    # 10 kWh at 0.30 EUR, no VAT given: 3.00 EUR.
    await expect(page.locator("#preview-total")).to_contain_text("Total: 3.00 EUR incl. VAT")
    await shoot(page, "tariffs")


async def test_an_admin_adds_a_user_and_a_viewer_cannot_release_or_command(
    product: Product, browser: Any
) -> None:
    admin = await logged_in(browser, product, "ada")
    await show(admin, product, "/users", "users")
    await admin.get_by_label("Name", exact=True).first.fill("nina")
    await admin.locator("#n-role").select_option("viewer")
    await admin.get_by_label("Password", exact=True).fill(PASSWORD)
    await admin.get_by_role("button", name="Add user").click()
    await expect(admin.locator("#users")).to_contain_text("nina", timeout=WAIT_MS)
    await shoot(admin, "users")

    session_id = await held_session(product, "CP-HELD-2")
    page = await logged_in(browser, product, "nina")
    assert await page.get_by_role("link", name="Users").count() == 0
    await show(page, product, "/review", "review")
    row = page.locator("#held tbody tr", has_text=session_id)
    await expect(row).to_contain_text("finance decides")
    await expect(page.get_by_role("button", name="Release")).to_have_count(0)
    await show(page, product, "/stations/CP-HELD-2", "station")
    await expect(page.locator("#commands")).to_have_count(0)
    me = await (await page.request.get(f"{product.api}/api/v1/session")).json()
    headers = {"X-CSRF-Token": me["csrf_token"]}
    release = await page.request.post(
        f"{product.api}/api/v1/invoices/held/{session_id}/release",
        data={"reviewer": "nina"},
        headers=headers,
    )
    assert release.status == 403, await release.text()
    command = await page.request.post(
        f"{product.api}/api/v1/stations/CP-HELD-2/commands",
        data={"action": "Reset", "payload": {"type": "Soft"}},
        headers=headers,
    )
    assert command.status == 403, await command.text()
    users = await page.request.get(f"{product.api}/api/v1/users")
    assert users.status == 403


async def test_the_api_behind_the_pages_answers_every_client_alike(product: Product) -> None:
    """What the pages read, read with an API token as an integration would."""
    now = datetime.now(UTC).replace(microsecond=0)
    if now.hour == 0 and now.minute < 10:  # the session must start and end today (UTC)
        now += timedelta(minutes=10)
    start = now - timedelta(minutes=10)
    tx = await charge(
        product,
        "CP-TODAY",
        [
            (f"{start:%Y-%m-%dT%H:%M:%SZ}", 0, 0),
            (f"{start + timedelta(minutes=5):%Y-%m-%dT%H:%M:%SZ}", 900, 10_800),
            (f"{now:%Y-%m-%dT%H:%M:%SZ}", 1_800, 0),
        ],
    )
    fleet = eventually(
        lambda: (
            [
                s
                for s in product.get("/api/v1/fleet", q="cp-today")
                if s["sessions_today"] and s["energy_today_wh"] >= 1_800
            ]
            or None
        ),
        30,
        "today's session and its energy on the fleet (two processors, each at its own pace)",
    )
    [station] = fleet
    assert (station["station_id"], station["energy_today_wh"]) == ("CP-TODAY", 1_800)
    assert 0 <= Decimal(station["availability_today_percent"]) <= 100
    assert station["connectors"] == [] and station["faults"] == 0
    assert "CP-TODAY" not in {s["station_id"] for s in product.get("/api/v1/fleet", fault="true")}

    curve = product.get(f"/api/v1/sessions/CP-TODAY:{tx}/curve")
    assert [(p["energy_wh"], p["power_w"]) for p in curve["points"]] == [
        (0, None),
        (900, 10_800),
        (1_800, 10_800),
    ]
    assert curve["points"][2]["power_derived"] is True
    frames = product.get(f"/api/v1/sessions/CP-TODAY:{tx}/frames")
    assert [f["action"] for f in frames][::2] == [
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    ]

    what_integrations_do(product)


def what_integrations_do(product: Product) -> None:
    """Tariff errors by field, price previews, totals, users and tokens, energy as CSV."""
    auth = {"Authorization": f"Bearer {product.token}"}
    with httpx.Client(base_url=product.api, headers=auth, timeout=30) as api:
        wrong = {
            "country_code": "DE",
            "party_id": "CLG",
            "id": "BAD",
            "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": "x", "step_size": 1}]}],
        }
        refused = api.put("/api/v1/tariffs/BAD", json=wrong)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == [
            "body",
            "elements",
            0,
            "price_components",
            0,
            "price",
        ]
        preview = api.post(
            "/api/v1/tariffs/SAMPLE-ENERGY/preview",
            json={"energy_wh": 12_345, "start": "2026-05-02T10:00:00Z", "duration_s": 3600},
        )
        assert preview.status_code == 200, preview.text
        # The sample tariff (0.39 EUR/kWh, 19 % VAT) on the README tour's 12.345 kWh: the
        # invoice's 5.72 EUR, VAT on the rounded net, not 4.81455 * 1.19 = 5.73.
        priced = preview.json()
        assert (priced["total_excl_vat"], priced["total_vat"], priced["total_incl_vat"]) == (
            "4.81",
            "0.91",
            "5.72",
        )
        assert [line["description"] for line in priced["invoice_lines"]] == ["Energy"]
        one_wh = {"energy_wh": 1, "start": "2026-05-02T10:00:00Z", "duration_s": 60}
        zone = api.post(
            "/api/v1/tariffs/SAMPLE-ENERGY/preview", json={**one_wh, "time_zone": "Mars/Olympus"}
        )
        assert zone.status_code == 422 and zone.json()["detail"][0]["loc"] == ["body", "time_zone"]
        assert api.post("/api/v1/tariffs/NOPE/preview", json=one_wh).status_code == 404
        late = {**one_wh, "start": "9999-12-30T00:00:00Z", "duration_s": 7 * 86400}
        too_late = api.post("/api/v1/tariffs/SAMPLE-ENERGY/preview", json=late)
        assert too_late.status_code == 422 and too_late.json()["detail"][0]["loc"] == [
            "body",
            "start",
        ]

        totals = api.get("/api/v1/invoices/totals").json()
        assert [t["currency"] for t in totals] == ["EUR"] and totals[0]["documents"] >= 1

        assert (
            api.post(
                "/api/v1/users", json={"name": "ada", "role": "viewer", "password": PASSWORD}
            ).status_code
            == 409
        )
        assert (
            api.post(
                "/api/v1/users", json={"name": "zed", "role": "boss", "password": PASSWORD}
            ).status_code
            == 422
        )
        assert api.patch("/api/v1/users/nobody", json={"enabled": False}).status_code == 404
        made = api.post("/api/v1/api-tokens", json={"name": "exporter", "role": "finance"})
        assert made.status_code == 201 and made.json()["token"].startswith("clt_")
        as_finance = {"Authorization": f"Bearer {made.json()['token']}"}
        assert api.get("/api/v1/invoices/totals", headers=as_finance).status_code == 200
        assert api.get("/api/v1/users", headers=as_finance).status_code == 403

        csv = api.get("/api/v1/energy.csv", params={"group_by": "station"})
        lines = csv.text.splitlines()
        assert lines[0] == "station_id,energy_wh,sessions" and "CP-TODAY,1800,1" in lines
