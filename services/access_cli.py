"""``chargeledger users|api-tokens``: who may use the HTTP API. They work on the database
directly (``--data-dir`` for the embedded server, or ``--database-url``), so that the first
admin can be made before ``up`` ever ran."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from .access import store
from .access.credentials import CredentialError
from .access.roles import ROLES
from .core import db

EXIT_USAGE = 2
EXIT_FAILURE = 1

users = typer.Typer(
    help="Users of the HTTP API and the console, with their roles (on the database directly).",
    no_args_is_help=True,
)
api_tokens = typer.Typer(
    help="API tokens for machines, with their roles (on the database directly).",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path,
    typer.Option(envvar="CHARGELEDGER_DATA_DIR", help="Data directory of the embedded server."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(envvar="CHARGELEDGER_DATABASE_URL", help="PostgreSQL DSN instead."),
]
RoleOption = Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (one line)."),
]
DEFAULT_DATA_DIR = Path(".chargeledger")
USER_COLUMNS = ["name", "role", "enabled", "created_at", "updated_at"]
TOKEN_COLUMNS = ["name", "role", "expires_at", "created_at", "revoked_at"]


def _fail(message: str, code: int) -> None:
    typer.echo(f"chargeledger: error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _database(data_dir: Path, database_url: str | None) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the database (migrated), committed when the block ends without error."""
    try:
        dsn = database_url or db.start_embedded(data_dir)
        db.migrate(dsn)
        conn = psycopg.connect(dsn, autocommit=False)
    except (db.DatabaseError, psycopg.Error) as exc:
        _fail(f"cannot use the database: {exc}", EXIT_FAILURE)
        raise AssertionError from exc  # unreachable
    try:
        with conn:  # commits at the end, rolls back on an error
            yield conn
    except (store.AccessError, CredentialError, ValueError) as exc:
        _fail(str(exc), EXIT_USAGE)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        _fail("no terminal to ask for the password: give it with --password-stdin", EXIT_USAGE)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _print(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    text = [{c: "-" if r.get(c) is None else str(r[c]) for c in columns} for r in rows]
    widths = {c: max([len(c), *(len(r[c]) for r in text)]) for c in columns}
    typer.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in text:
        typer.echo("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


@users.command("add")
def add_user(
    name: str,
    role: RoleOption,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a user; the password is asked for (twice), or read from standard input."""
    password = _password(password_stdin)
    with _database(data_dir, database_url) as conn:
        _print([store.add_user(conn, name, role, password)], USER_COLUMNS, False)


@users.command("list")
def list_users(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """List the users (never their passwords)."""
    with _database(data_dir, database_url) as conn:
        _print(store.list_users(conn), USER_COLUMNS, as_json)


def _change(name: str, data_dir: Path, database_url: str | None, **changes: Any) -> None:
    with _database(data_dir, database_url) as conn:
        _print([store.change_user(conn, name, **changes)], USER_COLUMNS, False)


@users.command("disable")
def disable_user(
    name: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrl = None
) -> None:
    """Disable a user: no login, and its open console sessions end."""
    _change(name, data_dir, database_url, enabled=False)


@users.command("enable")
def enable_user(
    name: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrl = None
) -> None:
    """Enable a user again."""
    _change(name, data_dir, database_url, enabled=True)


@users.command("set-role")
def set_user_role(
    name: str,
    role: RoleOption,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user another role."""
    _change(name, data_dir, database_url, role=role)


@users.command("set-password")
def set_user_password(
    name: str,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's password (asked for, or read from standard input)."""
    password = _password(password_stdin)
    _change(name, data_dir, database_url, password=password)


@api_tokens.command("create")
def create_token(
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'billing'.")],
    role: RoleOption,
    expires: Annotated[
        datetime | None,
        typer.Option(help="When the token stops working (a date or time; UTC if no zone)."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API token; it is printed once, alone on the last line (send it as
    `Authorization: Bearer TOKEN`, or give it to the CLI with --api-token or
    CHARGELEDGER_API_TOKEN)."""
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    with _database(data_dir, database_url) as conn:
        row, token = store.create_token(conn, name, role, expires)
    _print([row], TOKEN_COLUMNS, False)
    typer.echo("The token (shown this once; only its hash is kept):", err=True)
    typer.echo(token)


@api_tokens.command("list")
def list_tokens(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """List the API tokens (never the tokens themselves)."""
    with _database(data_dir, database_url) as conn:
        _print(store.list_tokens(conn), TOKEN_COLUMNS, as_json)


@api_tokens.command("revoke")
def revoke_token(
    name: str, data_dir: DataDir = DEFAULT_DATA_DIR, database_url: DatabaseUrl = None
) -> None:
    """Revoke an API token: it is refused from now on."""
    with _database(data_dir, database_url) as conn:
        _print([store.revoke_token(conn, name)], TOKEN_COLUMNS, False)
