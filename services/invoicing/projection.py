"""PostgreSQL projection of issued invoices and credit notes. Rows are inserted once, never
updated."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..core.events import Event, Invoice
from ..core.log import Position
from ..core.runtime import Sink


class InvoiceSink(Sink):
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        for out in outputs:
            if isinstance(out, Invoice):
                await insert_invoice(conn, out, position)


async def insert_invoice(conn: AsyncConnection[Any], inv: Invoice, position: Position) -> None:
    await conn.execute(
        "INSERT INTO invoices (invoice_number, issuer, session_id, station_id, connector_id,"
        " transaction_id, id_tag, started_at, stopped_at, meter_start_wh, meter_stop_wh,"
        " energy_wh, tariff_id, currency, lines, total_excl_vat, total_vat, total_incl_vat,"
        ' source_event_id, stream, partition, "offset", transaction_ref, document_type, cancels,'
        " replaces, signature_status, signed_energy_wh, cdr, signed_values)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            inv.invoice_number,
            inv.issuer,
            inv.session_id,
            inv.station_id,
            inv.connector_id,
            inv.transaction_id,
            inv.id_tag,
            inv.started_at,
            inv.stopped_at,
            inv.meter_start_wh,
            inv.meter_stop_wh,
            inv.energy_wh,
            inv.tariff_id,
            inv.currency,
            Jsonb([dataclasses.asdict(line) for line in inv.lines]),
            Decimal(inv.total_excl_vat),
            Decimal(inv.total_vat),
            Decimal(inv.total_incl_vat),
            inv.source_event_id,
            position.stream,
            position.partition,
            position.offset,
            inv.transaction_ref,
            inv.document_type,
            inv.cancels,
            inv.replaces,
            inv.signature_status,
            inv.signed_energy_wh,
            inv.cdr,
            Jsonb([dataclasses.asdict(value) for value in inv.signed_values]),
        ),
    )
