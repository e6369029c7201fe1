"""The local authorization list: what a station holds and the update it needs. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from chargeledger.gateway.local_list import Token, held, plan
from chargeledger.gateway.validation import Validators

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
TOKENS = [
    Token("04A2B3C4D5", "Accepted", group_id="FLEET-7"),
    Token("BLOCKED-1", "Blocked"),
    Token("OLD-CARD", "Accepted", expires_at=datetime(2026, 1, 1, tzinfo=UTC)),
    Token("LATER", "Accepted", expires_at=datetime(2027, 12, 31, tzinfo=UTC)),
]


def test_a_first_update_is_full_and_valid_for_each_version() -> None:
    for version in ("ocpp1.6", "ocpp2.0.1", "ocpp2.1"):
        update = plan(version, TOKENS, None, 0, full=False, now=NOW)
        assert (update.update_type, update.version, update.added) == ("Full", 1, 4)
        assert update.payload is not None
        Validators(version).request("SendLocalList", update.payload)  # raises when invalid


def test_1_6_entries_carry_status_expiry_and_group() -> None:
    update = plan("ocpp1.6", TOKENS, None, 0, full=False, now=NOW)
    assert update.payload is not None
    assert update.payload["listVersion"] == 1
    entries = {e["idTag"]: e["idTagInfo"] for e in update.payload["localAuthorizationList"]}
    assert entries["04A2B3C4D5"] == {"status": "Accepted", "parentIdTag": "FLEET-7"}
    assert entries["BLOCKED-1"] == {"status": "Blocked"}
    assert entries["OLD-CARD"] == {"status": "Expired", "expiryDate": "2026-01-01T00:00:00Z"}
    assert entries["LATER"] == {"status": "Accepted", "expiryDate": "2027-12-31T00:00:00Z"}


def test_2_x_entries_name_a_token_type() -> None:
    tokens = [Token("CARD", "Accepted"), Token("APP", "Accepted", token_type="Central")]
    update = plan("ocpp2.0.1", tokens, None, 3, full=False, now=NOW)
    assert update.payload is not None
    assert update.payload["versionNumber"] == 4
    types = {
        e["idToken"]["idToken"]: e["idToken"]["type"]
        for e in update.payload["localAuthorizationList"]
    }
    assert types == {"CARD": "ISO14443", "APP": "Central"}


def test_after_an_accepted_update_only_changes_are_sent() -> None:
    first = plan("ocpp1.6", TOKENS, None, 0, full=False, now=NOW)
    assert first.payload is not None
    known = held([first.payload])
    assert known is not None and known.version == 1
    changed = [
        Token("04A2B3C4D5", "Blocked", group_id="FLEET-7"),  # changed
        TOKENS[2],
        TOKENS[3],
        Token("NEW-1", "Accepted"),  # added; BLOCKED-1 is gone
    ]
    update = plan("ocpp1.6", changed, known, 1, full=False, now=NOW)
    assert (update.update_type, update.version) == ("Differential", 2)
    assert (update.added, update.changed, update.removed) == (1, 1, 1)
    assert update.payload is not None
    assert update.payload["localAuthorizationList"] == [
        {"idTag": "NEW-1", "idTagInfo": {"status": "Accepted"}},
        {"idTag": "04A2B3C4D5", "idTagInfo": {"status": "Blocked", "parentIdTag": "FLEET-7"}},
        {"idTag": "BLOCKED-1"},  # without info: removed
    ]
    Validators("ocpp1.6").request("SendLocalList", update.payload)
    after = held([first.payload, update.payload])
    assert after is not None and after.version == 2
    assert sorted(after.entries) == ["04A2B3C4D5", "LATER", "NEW-1", "OLD-CARD"]
    # Nothing changed since: nothing to send.
    assert plan("ocpp1.6", changed, after, 2, full=False, now=NOW).payload is None


def test_full_when_asked_or_when_the_station_holds_another_version() -> None:
    first = plan("ocpp2.0.1", TOKENS, None, 0, full=False, now=NOW)
    assert first.payload is not None
    known = held([first.payload])
    assert plan("ocpp2.0.1", TOKENS, known, 1, full=True, now=NOW).update_type == "Full"
    # The station was reset (version 0), or someone else sent it version 7.
    reset = plan("ocpp2.0.1", TOKENS, known, 0, full=False, now=NOW)
    assert (reset.update_type, reset.version) == ("Full", 2)
    other = plan("ocpp2.0.1", TOKENS, known, 7, full=False, now=NOW)
    assert (other.update_type, other.version) == ("Full", 8)


def test_a_differential_update_to_an_unknown_list_leaves_it_unknown() -> None:
    differential = {"listVersion": 3, "updateType": "Differential"}
    assert held([differential]) is None


def test_tokens_too_long_for_the_version_are_skipped_and_named() -> None:
    long_token = Token("X" * 30, "Accepted")
    update = plan("ocpp1.6", [long_token, TOKENS[0]], None, 0, full=False, now=NOW)
    assert update.added == 1
    assert update.skipped == (f"{'X' * 30}: longer than 20 characters",)
    assert plan("ocpp2.0.1", [long_token], None, 0, full=False, now=NOW).added == 1
    # An empty registry empties the list (2.x omits an empty list, as its schema wants).
    empty = plan("ocpp2.0.1", [], None, 0, full=False, now=NOW)
    assert empty.payload == {"versionNumber": 1, "updateType": "Full"}
    Validators("ocpp2.0.1").request("SendLocalList", empty.payload)
