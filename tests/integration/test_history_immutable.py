"""History cannot be edited: the log and the issued documents refuse UPDATE, DELETE and
TRUNCATE, even for a superuser (which the test database's user is)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.core.log import PostgresLog, Record

INVOICE = (
    "INSERT INTO invoices (invoice_number, issuer, session_id, station_id, connector_id,"
    " transaction_id, started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh,"
    " tariff_id, currency, lines, total_excl_vat, total_vat, total_incl_vat, source_event_id,"
    ' stream, partition, "offset", cdr)'
    " VALUES ('CL-2026-000001', 'CL', 'CP-1:1', 'CP-1', 1, 1, now(), now(), 0, 1000, 1000,"
    " 'T', 'EUR', '[]', 0.39, 0.07, 0.46, 'CP-1:1:3', 'invoicing.invoices', 0, 0, '{}')"
)
EDITS = [
    "UPDATE invoices SET total_incl_vat = 0",
    "UPDATE invoices SET cdr = '{\"total_cost\": 0}'",
    "DELETE FROM invoices",
    "TRUNCATE invoices",
    "UPDATE log_entries SET value = '\\x00'",
    "DELETE FROM log_entries",
    "TRUNCATE log_entries",
]


@pytest.mark.parametrize("edit", EDITS)
async def test_history_refuses_edits_even_from_a_superuser(
    pool: AsyncConnectionPool, edit: str
) -> None:
    log = PostgresLog(pool, partitions=1)
    await log.start()
    await log.append([Record("ocpp.frames", "CP-1", b"frame")])
    async with pool.connection() as conn:
        await conn.execute(INVOICE)
        cursor = await conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert await cursor.fetchone() == (True,)
    async with pool.connection() as conn:
        with pytest.raises(psycopg.Error, match="is not allowed"):
            await conn.execute(edit)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT (SELECT total_incl_vat FROM invoices), (SELECT value FROM log_entries)"
        )
        assert await cursor.fetchone() == (Decimal("0.46"), b"frame")
    await log.close()
