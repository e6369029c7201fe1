"""Who may connect as which station, and how a station's BootNotification is answered.

Identity (OCPP security profiles): profile 1 and 2 stations authenticate with HTTP Basic auth,
user name = station id, password checked against the registry's hash; profile 3 stations present
a client certificate whose common name is the station id. A station with a registered password
must use it under every profile. Registration: registered stations are Accepted (Rejected when
disabled); unknown stations follow the configured policy.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from psycopg_pool import AsyncConnectionPool

from ..access.throttle import Throttle
from ..core import scrypt
from ..registry import passwords

UnknownStationPolicy = Literal["accept", "pending", "reject"]
RegistrationStatus = Literal["Accepted", "Pending", "Rejected"]
_FOR_UNKNOWN: dict[str, RegistrationStatus] = {
    "accept": "Accepted",
    "pending": "Pending",
    "reject": "Rejected",
}
# TriggerMessage's requestedMessage -> the action the station then sends.
_TRIGGERED_ACTION = {
    "SignChargePointCertificate": "SignCertificate",  # 1.6 ExtendedTriggerMessage
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
}


_CONCURRENT_CHECKS = 4
_MAX_FAILURES = 5  # wrong passwords for one station from one client within ...
_FAILURE_WINDOW_S = 60.0  # ... this time, and attempts are refused unchecked for a while


class AuthenticationError(Exception):
    """The station is not who it claims to be; the message says why (logged). ``answer`` is
    what the client is told (HTTP 401), when that must not say more, such as whether a station
    has a password at all."""

    def __init__(self, message: str, answer: str | None = None) -> None:
        super().__init__(message)
        self.answer = answer or message


@dataclass
class Registration:
    """One connection's registration state: the answer to the station's last BootNotification.

    While it is not Accepted the station may send BootNotification only, and, while Pending,
    the messages the central system asked for with TriggerMessage.
    """

    status: RegistrationStatus | None
    # action -> whether it may come once (a trigger for one connector or EVSE), or any number
    # of times (a trigger for the whole station: one message per connector)
    triggered: dict[str, bool] = field(default_factory=dict)

    def allows(self, action: str) -> bool:
        if action == "BootNotification" or self.status == "Accepted":
            return True
        if self.status == "Pending" and action in self.triggered:
            if self.triggered[action]:
                del self.triggered[action]
            return True
        return False

    def trigger(self, requested_message: str, *, once: bool = True) -> None:
        action = _TRIGGERED_ACTION.get(requested_message, requested_message)
        self.triggered[action] = once and self.triggered.get(action, True)

    def refusal(self) -> str:
        if self.status is None:
            return "send BootNotification first: nothing else is accepted before it is Accepted"
        return f"the station's BootNotification was answered {self.status}; boot again later"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").strip().partition(" ")
    if scheme.lower() != "basic":  # the scheme name is case-insensitive (RFC 7617)
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class Admission:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        unknown_stations: UnknownStationPolicy,
        security_profile: int,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._unknown = unknown_stations
        self.security_profile = security_profile
        self._clock = clock
        # Password checks run scrypt, which is slow on purpose: a few at a time, and a client
        # that keeps guessing one station's password is made to wait.
        self._checks = asyncio.Semaphore(_CONCURRENT_CHECKS)
        self._failures = Throttle(monotonic, allowed=_MAX_FAILURES, window_s=_FAILURE_WINDOW_S)

    async def _station(self, station_id: str) -> tuple[bool, str | None] | None:
        """(enabled, password hash) of a registered station, None for an unknown one."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT enabled, password_hash FROM stations WHERE station_id = %s", (station_id,)
            )
            row = await cursor.fetchone()
        return (bool(row[0]), row[1]) if row else None

    async def authenticate(
        self,
        station_id: str,
        authorization: str | None,
        certificate_name: str | None,
        client: str = "",
    ) -> None:
        """Raise AuthenticationError unless the connection proves it is ``station_id``.
        ``client`` (the remote host) scopes the limit on failed password attempts."""
        if self.security_profile == 3 and certificate_name != station_id:
            raise AuthenticationError(
                f"the client certificate names {certificate_name!r}, not station {station_id!r}"
            )
        station = await self._station(station_id)
        password_hash = station[1] if station else None
        if self.security_profile == 3 or (self.security_profile == 0 and password_hash is None):
            return
        credentials = basic_credentials(authorization)
        if credentials is None:
            raise AuthenticationError(
                f"station {station_id!r} must authenticate with HTTP Basic auth"
            )
        user, password = credentials
        if user != station_id:
            raise AuthenticationError(
                f"the Basic auth user {user!r} is not the station id in the URL ({station_id!r})"
            )
        refused = f"wrong user name or password for station {station_id!r}"
        attempt = (station_id, client)
        # Counted per client and station, so that nobody elsewhere locks a station out.
        wait_s = self._failures.wait_s(attempt)
        if wait_s > 0:
            raise AuthenticationError(
                f"too many wrong passwords for station {station_id!r} from {client or '?'};"
                " refused without checking",
                f"too many failed attempts for station {station_id!r}; try again in"
                f" {int(wait_s) + 1} s",
            )
        # A station without a password (or unknown) is checked against a dummy hash, so that
        # neither the time of the answer nor the limit on failures tells which stations have one.
        async with self._checks:
            valid = await asyncio.to_thread(
                passwords.verify, password, password_hash or scrypt.DUMMY_HASH
            )
        if not valid or password_hash is None:
            self._failures.failed(attempt)
            why = (
                f"station {station_id!r} has no password in the registry; register one"
                if password_hash is None
                else f"wrong password for station {station_id!r}"
            )
            raise AuthenticationError(why, refused)
        self._failures.succeeded(attempt)

    async def registration_status(self, station_id: str) -> RegistrationStatus:
        """What a BootNotification from this station is answered now."""
        station = await self._station(station_id)
        if station is None:
            return _FOR_UNKNOWN[self._unknown]
        return "Accepted" if station[0] else "Rejected"

    async def answer_boot(self, station_id: str) -> RegistrationStatus:
        status = await self.registration_status(station_id)
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO station_boots (station_id, status, answered_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (station_id) DO UPDATE"
                " SET status = EXCLUDED.status, answered_at = EXCLUDED.answered_at",
                (station_id, status, self._clock()),
            )
        return status

    async def registration(self, station_id: str) -> Registration:
        """A new connection's state: as the last boot left it, unless the station was since
        disabled (or the policy for unknown stations changed)."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT status FROM station_boots WHERE station_id = %s", (station_id,)
            )
            row = await cursor.fetchone()
        last: RegistrationStatus | None = row[0] if row else None
        now = await self.registration_status(station_id)
        if last is None or now == "Accepted":
            return Registration(last)
        return Registration(now)
