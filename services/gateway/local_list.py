"""A station's local authorization list: what it holds, and the SendLocalList that brings it to
the registry's tokens. Pure: no I/O.

What the station holds is folded from the SendLocalList requests it accepted, in order (a Full
update replaces the list, a Differential one changes the entries it names and removes those it
names without info). The next update is Differential when that fold's version is the one the
station reports (GetLocalListVersion) and Full otherwise, or when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# What a list entry says of a token: (status, expiry as sent, group), the same in every version.
Info = tuple[str, str | None, str | None]

_MAX_ID_TOKEN = {"ocpp1.6": 20, "ocpp2.0.1": 36, "ocpp2.1": 255}
_MAX_GROUP = {"ocpp1.6": 20, "ocpp2.0.1": 36, "ocpp2.1": 255}
TOKEN_TYPES_201 = frozenset(
    {"Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress"}
)
DEFAULT_TOKEN_TYPE = "ISO14443"  # an RFID card's UID, which is what most tokens are


@dataclass(frozen=True)
class Token:
    """A registered id token, as the list needs it."""

    id_token: str
    status: str
    expires_at: datetime | None = None
    group_id: str | None = None
    token_type: str | None = None


@dataclass(frozen=True)
class StationList:
    version: int
    entries: dict[str, Info] = field(default_factory=dict)  # id token -> info


@dataclass(frozen=True)
class Update:
    """A SendLocalList to send (``payload``), or None when the station is up to date."""

    payload: dict[str, Any] | None
    update_type: str | None  # Full, Differential, or None
    version: int
    added: int = 0
    changed: int = 0
    removed: int = 0
    skipped: tuple[str, ...] = ()  # tokens this version's list cannot hold, and why


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def wanted(
    tokens: Iterable[Token], ocpp_version: str, now: datetime
) -> tuple[dict[str, Info], dict[str, str | None], list[str]]:
    """The entries the registry wants on a station of this version (by id token), the type of
    each (2.x), and the tokens that cannot be sent, with the reason."""
    entries: dict[str, Info] = {}
    types: dict[str, str | None] = {}
    skipped = []
    limit, group_limit = _MAX_ID_TOKEN[ocpp_version], _MAX_GROUP[ocpp_version]
    for token in tokens:
        if len(token.id_token) > limit:
            skipped.append(f"{token.id_token}: longer than {limit} characters")
            continue
        group = token.group_id if token.group_id and len(token.group_id) <= group_limit else None
        expired = token.expires_at is not None and token.expires_at <= now
        status = "Expired" if token.status == "Accepted" and expired else token.status
        expiry = _time(token.expires_at) if token.expires_at is not None else None
        entries[token.id_token] = (status, expiry, group)
        types[token.id_token] = token.token_type
    return entries, types, skipped


def _entry(ocpp_version: str, id_token: str, info: Info | None, token_type: str | None) -> Any:
    if ocpp_version == "ocpp1.6":
        entry: dict[str, Any] = {"idTag": id_token}
        if info is not None:
            status, expiry, group = info
            tag_info: dict[str, Any] = {"status": status}
            if expiry is not None:
                tag_info["expiryDate"] = expiry
            if group is not None:
                tag_info["parentIdTag"] = group
            entry["idTagInfo"] = tag_info
        return entry
    if ocpp_version == "ocpp2.0.1" and token_type not in TOKEN_TYPES_201:
        token_type = DEFAULT_TOKEN_TYPE
    entry = {"idToken": {"idToken": id_token, "type": token_type or DEFAULT_TOKEN_TYPE}}
    if info is not None:
        status, expiry, group = info
        token_info: dict[str, Any] = {"status": status}
        if expiry is not None:
            token_info["cacheExpiryDateTime"] = expiry
        if group is not None:
            token_info["groupIdToken"] = {"idToken": group, "type": "Central"}
        entry["idTokenInfo"] = token_info
    return entry


def _payload(
    ocpp_version: str, version: int, update_type: str, entries: list[dict[str, Any]]
) -> dict[str, Any]:
    name = "listVersion" if ocpp_version == "ocpp1.6" else "versionNumber"
    payload: dict[str, Any] = {name: version, "updateType": update_type}
    if entries:  # 2.x wants at least one item when the list is given
        payload["localAuthorizationList"] = entries
    return payload


def plan(
    ocpp_version: str,
    tokens: Iterable[Token],
    known: StationList | None,
    station_version: int,
    *,
    full: bool,
    now: datetime,
) -> Update:
    """The update that brings a station's list (version ``station_version`` as it reports it;
    ``known`` is what we know it holds) to the registry's tokens."""
    entries, types, skipped = wanted(tokens, ocpp_version, now)
    base = known if known is not None and known.version == station_version else None
    version = max(station_version, known.version if known else 0) + 1
    if full or base is None:
        items = [_entry(ocpp_version, t, info, types[t]) for t, info in sorted(entries.items())]
        return Update(
            _payload(ocpp_version, version, "Full", items),
            "Full",
            version,
            added=len(items),
            skipped=tuple(skipped),
        )
    added = sorted(t for t in entries if t not in base.entries)
    changed = sorted(t for t in entries if t in base.entries and base.entries[t] != entries[t])
    removed = sorted(t for t in base.entries if t not in entries)
    if not (added or changed or removed):
        return Update(None, None, station_version, skipped=tuple(skipped))
    items = [_entry(ocpp_version, t, entries[t], types[t]) for t in [*added, *changed]]
    items += [_entry(ocpp_version, t, None, None) for t in removed]
    return Update(
        _payload(ocpp_version, version, "Differential", items),
        "Differential",
        version,
        added=len(added),
        changed=len(changed),
        removed=len(removed),
        skipped=tuple(skipped),
    )


def _info(item: dict[str, Any]) -> tuple[str | None, Info | None]:
    """An entry of a SendLocalList of any version as (id token, info or None for a removal)."""
    if "idTag" in item:  # 1.6
        details = item.get("idTagInfo")
        token = item.get("idTag")
        if isinstance(details, dict):
            info: Info = (
                str(details.get("status")),
                details.get("expiryDate"),
                details.get("parentIdTag"),
            )
            return str(token), info
        return str(token), None
    id_token = item.get("idToken")
    token = id_token.get("idToken") if isinstance(id_token, dict) else None
    details = item.get("idTokenInfo")
    if isinstance(details, dict):
        group = details.get("groupIdToken")
        info = (
            str(details.get("status")),
            details.get("cacheExpiryDateTime"),
            group.get("idToken") if isinstance(group, dict) else None,
        )
        return (str(token) if token is not None else None), info
    return (str(token) if token is not None else None), None


def held(accepted: Sequence[dict[str, Any]]) -> StationList | None:
    """What a station holds after accepting these SendLocalList requests, in order; None when
    that is not known (no Full update among them)."""
    current: StationList | None = None
    for payload in accepted:
        version = payload.get("listVersion", payload.get("versionNumber"))
        if type(version) is not int:
            continue
        if payload.get("updateType") == "Full":
            entries: dict[str, Info] = {}
        elif current is not None:
            entries = dict(current.entries)
        else:
            continue  # a change to a list we never knew: still unknown
        for item in payload.get("localAuthorizationList") or []:
            if not isinstance(item, dict):
                continue
            token, info = _info(item)
            if token is None:
                continue
            if info is None:
                entries.pop(token, None)
            else:
                entries[token] = info
        current = StationList(version, entries)
    return current
