"""User passwords and API tokens: how they are made, hashed and checked. No I/O."""

from __future__ import annotations

import hashlib
import re
import secrets

from ..core import scrypt

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
NAME_RULE = "1 to 64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_PREFIX = "clt_"


class CredentialError(ValueError):
    pass


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise CredentialError(f"a user or token name is {NAME_RULE}, not {name!r}")
    return name


def check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise CredentialError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters,"
            f" not {len(password)}"
        )
    if not password.isprintable() or "\x00" in password:
        raise CredentialError("a password is printable text")


def hash_password(password: str) -> str:
    """A salted scrypt hash (slow on purpose)."""
    check_password(password)
    return scrypt.salted_hash(password)


def verify_password(password: str, stored: str) -> bool:
    return scrypt.verify(password, stored)


DUMMY_PASSWORD_HASH = scrypt.DUMMY_HASH


def new_token() -> str:
    """An API token: 256 random bits, recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored of a token: it is random and long, so a plain SHA-256 is enough."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()
