"""``chargeledger ocmf``: check signed meter values without any service running."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .invoicing.ocmf import ACCEPTED_KEY_FORMATS, OcmfError, public_key_hex
from .invoicing.signed_data import InputError, check, read_input

EXIT_NOT_VERIFIED = 1
EXIT_UNREADABLE = 2
_MAX_KEY_FILE_BYTES = 64 * 1024

ocmf = typer.Typer(
    help="Check OCMF signed meter values (Eichrecht) without any service running.",
    no_args_is_help=True,
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"chargeledger: error: {message}", err=True)
    raise typer.Exit(EXIT_UNREADABLE)


def _key(given: str) -> str:
    """The key text of --public-key: the key itself, or the file that holds it."""
    text = given
    path = Path(given)
    try:
        is_file = len(given) < 4096 and path.is_file()
    except OSError:  # a key too long for a file name
        is_file = False
    if is_file:
        try:
            if path.stat().st_size > _MAX_KEY_FILE_BYTES:
                _fail(f"--public-key: {path} is too large for a key file")
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--public-key: cannot read the key file {path}: {exc}")
    try:
        public_key_hex(text)
    except OcmfError as exc:
        _fail(f"--public-key: {exc}")
    return text


@ocmf.command("verify")
def verify_command(
    file: Annotated[
        str,
        typer.Argument(
            help="One OCMF record (OCMF|{...}|{...}), or an XML file of the S.A.F.E."
            " transparency software; - reads standard input.",
            show_default=False,
        ),
    ],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help=f"The meter's key ({ACCEPTED_KEY_FORMATS}), or a file holding it: every record"
            " is checked with it instead of the key it comes with.",
        ),
    ] = None,
) -> None:
    """Verify the signatures of signed meter values and print, as a JSON array, one object per
    record in file order: status (verified, invalid, unverified), reason, meter_serial and the
    readings. Exit code 0 when every record verified, 1 otherwise, 2 when the input cannot be
    read."""
    key = _key(public_key) if public_key is not None else None
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        _fail(f"cannot read {file}: {exc.strerror or exc}")
    try:
        entries = read_input(data)
    except InputError as exc:
        _fail(f"{'standard input' if file == '-' else file}: {exc}")
    results = check(entries, key)
    typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
    if not all(r["status"] == "verified" for r in results):
        raise typer.Exit(EXIT_NOT_VERIFIED)
