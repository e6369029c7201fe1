"""Which right each operation of the HTTP API needs: one table, read by the access guard, written
into the OpenAPI document, and checked against it by a test (so no endpoint is forgotten).
Pure: no I/O."""

from __future__ import annotations

import re
from functools import cache

from ..access.roles import Right

# Open to anyone who reaches the port: liveness and readiness probes, and logging in.
OPEN = frozenset({("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/api/v1/session")})
METRICS = ("GET", "/metrics")

READ: Right = "read"
OPERATE: Right = "operate"
FINANCE: Right = "finance"
AUDIT: Right = "audit"
ADMIN: Right = "admin"

RIGHTS: dict[tuple[str, str], Right] = {
    # Reading: every role.
    ("GET", "/api/v1/session"): READ,
    ("DELETE", "/api/v1/session"): READ,
    ("GET", "/api/v1/sessions"): READ,
    ("GET", "/api/v1/sessions/{session_id}"): READ,
    ("GET", "/api/v1/sessions/{session_id}/frames"): READ,
    ("GET", "/api/v1/sessions/{session_id}/curve"): READ,
    ("GET", "/api/v1/events"): READ,
    ("GET", "/api/v1/stations"): READ,
    ("GET", "/api/v1/stations/{station_id}"): READ,
    ("GET", "/api/v1/stations/{station_id}/status-history"): READ,
    ("GET", "/api/v1/stations/{station_id}/firmware-status-history"): READ,
    ("GET", "/api/v1/stations/{station_id}/diagnostics-status-history"): READ,
    ("GET", "/api/v1/stations/{station_id}/security-events"): READ,
    ("GET", "/api/v1/stations/{station_id}/availability"): READ,
    ("GET", "/api/v1/stations/{station_id}/meter-keys"): READ,
    ("GET", "/api/v1/stations/{station_id}/time-zones"): READ,
    ("GET", "/api/v1/stations/{station_id}/local-list"): READ,
    ("GET", "/api/v1/faults"): READ,
    ("GET", "/api/v1/fleet"): READ,
    ("GET", "/api/v1/energy"): READ,
    ("GET", "/api/v1/energy.csv"): READ,
    ("GET", "/api/v1/tokens"): READ,
    ("GET", "/api/v1/tokens/{id_token}"): READ,
    ("GET", "/api/v1/tariffs"): READ,
    ("GET", "/api/v1/tariffs/{tariff_id}"): READ,
    ("GET", "/api/v1/tariff-assignments"): READ,
    ("POST", "/api/v1/tariffs/{tariff_id}/preview"): READ,
    ("GET", "/api/v1/invoices"): READ,
    ("GET", "/api/v1/invoices/held"): READ,
    ("GET", "/api/v1/invoices/totals"): READ,
    ("GET", "/api/v1/invoices/{invoice_number}"): READ,
    ("GET", "/api/v1/invoices/{invoice_number}.html"): READ,
    ("GET", "/api/v1/invoices/{invoice_number}/cdr"): READ,
    ("GET", "/api/v1/invoices/{invoice_number}/evidence"): READ,
    ("GET", "/api/v1/invoices/{invoice_number}/signed-data.xml"): READ,
    ("GET", "/api/v1/commands/{command_id}"): READ,
    ("GET", "/api/v1/processing-errors"): READ,
    # Operators: stations, id tokens, meter keys, time zones, commands to stations.
    ("POST", "/api/v1/stations"): OPERATE,
    ("PATCH", "/api/v1/stations/{station_id}"): OPERATE,
    ("POST", "/api/v1/tokens"): OPERATE,
    ("PATCH", "/api/v1/tokens/{id_token}"): OPERATE,
    ("POST", "/api/v1/stations/{station_id}/meter-keys"): OPERATE,
    ("PUT", "/api/v1/stations/{station_id}/time-zone"): OPERATE,
    ("POST", "/api/v1/stations/{station_id}/commands"): OPERATE,
    ("POST", "/api/v1/stations/{station_id}/local-list/sync"): OPERATE,
    # Finance: tariffs, their assignments, review decisions and the bulk exports.
    ("PUT", "/api/v1/tariffs/{tariff_id}"): FINANCE,
    ("POST", "/api/v1/tariff-assignments"): FINANCE,
    ("POST", "/api/v1/invoices/held/{session_id}/release"): FINANCE,
    ("POST", "/api/v1/invoices/held/{session_id}/dismiss"): FINANCE,
    ("GET", "/api/v1/invoices.csv"): FINANCE,
    ("GET", "/api/v1/cdrs"): FINANCE,
    # Who did what: finance (who released an invoice) and admins.
    ("GET", "/api/v1/audit"): AUDIT,
    # Admins: users and API tokens.
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("PATCH", "/api/v1/users/{name}"): ADMIN,
    ("GET", "/api/v1/api-tokens"): ADMIN,
    ("POST", "/api/v1/api-tokens"): ADMIN,
    ("DELETE", "/api/v1/api-tokens/{name}"): ADMIN,
}

# Anything not in the table (an endpoint added and forgotten here) is for admins only.
DEFAULT: Right = ADMIN


@cache
def _templates() -> list[tuple[str, re.Pattern[str], Right]]:
    found = []
    for (method, path), right in RIGHTS.items():
        pattern = re.escape(path)
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", pattern)
        found.append((method, re.compile(pattern), right))
    # Literal paths before templates: /invoices/held before /invoices/{invoice_number}.
    found.sort(key=lambda item: item[1].pattern.count("[^/]+"))
    return found


def required(method: str, path: str, *, metrics_open: bool) -> Right | None:
    """The right an operation needs; None for the open ones."""
    if method == "HEAD":
        method = "GET"
    if (method, path) in OPEN or (metrics_open and (method, path.rstrip("/")) == METRICS):
        return None
    if (method, path.rstrip("/")) == METRICS:
        return READ
    if not path.startswith("/api/"):
        return None  # the API's documentation, or a 404
    for candidate, pattern, right in _templates():
        if candidate == method and pattern.fullmatch(path):
            return right
    return DEFAULT
