"""The command line: one readable error line and an exit code; JSON logs for log collectors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chargeledger.cli import _configure_logging, app


def test_json_log_lines_carry_station_and_unique_id(capsys: pytest.CaptureFixture[str]) -> None:
    _configure_logging(verbose=False, log_format="json")
    try:
        logging.getLogger("chargeledger.gateway.server").warning(
            "%s sent a frame that is not OCPP-J (%s)",
            "CP-1",
            "not valid JSON",
            extra={"station_id": "CP-1", "unique_id": "42"},
        )
        line = capsys.readouterr().err.strip().splitlines()[-1]
    finally:
        logging.basicConfig(force=True)
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["message"] == "CP-1 sent a frame that is not OCPP-J (not valid JSON)"
    assert (record["station_id"], record["unique_id"]) == ("CP-1", "42")
    assert "time" in record and record["logger"] == "chargeledger.gateway.server"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--log", "kafka"], "log must be 'postgres' or 'kafka://HOST:PORT'"),
        (["up", "--log-format", "xml"], "--log-format must be 'text' or 'json'"),
        (["up", "--security-profile", "2"], "profile 2 needs a server certificate and key"),
        (["gateway", "--security-profile", "4"], "security_profile: Input should be less than"),
        (["up", "--unknown-stations", "maybe"], "unknown_stations: Input should be 'accept'"),
        (["ledger"], "chargeledger ledger needs --log kafka://HOST:PORT and --database-url"),
        (
            ["ledger", "--log", "kafka://127.0.0.1:1"],
            "chargeledger ledger needs --log kafka://HOST:PORT and --database-url",
        ),
        (
            ["up", "--kafka-min-insync-replicas", "2"],
            "kafka_min_insync_replicas is 2, more than kafka_replication_factor 1",
        ),
        (
            ["gateway", "--kafka-replication-factor", "0"],
            "kafka_replication_factor: Input should be greater than or equal to 1",
        ),
        (
            ["ledger", "--kafka-topic-prefix", "site a/"],
            "kafka_topic_prefix: 'site a/' cannot start a Kafka topic name",
        ),
        (
            ["replay", "--kafka-topic-prefix", "ü."],
            "kafka_topic_prefix: 'ü.' cannot start a Kafka topic name",
        ),
    ],
)
def test_bad_options_get_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_bad_tariff_file_is_named(tmp_path: Path) -> None:
    tariff = tmp_path / "tariff.json"
    tariff.write_text('{"id": "T"}')
    result = CliRunner().invoke(app, ["up", "--tariff", str(tariff), "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"chargeledger: error: {tariff}: country_code: Field required" in result.output


def test_unusable_tls_files_are_named(tmp_path: Path) -> None:
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    result = CliRunner().invoke(
        app,
        ["up", "--tls-cert", str(cert), "--tls-key", str(key), "--data-dir", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert f"chargeledger: error: cannot use TLS certificate {cert} with key {key}" in result.output


@pytest.mark.parametrize("station_id", [".", "..", "A?B", "A#B", "A%B", "A/B", "CP 1", "x" * 49])
@pytest.mark.parametrize(
    "command",
    [
        ["stations", "add"],
        ["stations", "disable"],
        ["stations", "meter-keys"],
        ["command"],
        ["tokens", "sync-local-list"],
    ],
)
def test_a_station_id_the_gateway_would_refuse_is_refused_before_any_request(
    command: list[str], station_id: str
) -> None:
    args = [*command, station_id] + (["Reset"] if command == ["command"] else [])
    # No API runs at this address: the id is refused before anything is sent.
    result = CliRunner().invoke(app, [*args, "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 2, result.output
    assert "is not 1-48 printable ASCII characters without / ? # % (and not . or ..)" in (
        result.output
    )
