"""Station passwords (OCPP security profiles 1 and 2), stored as salted scrypt hashes."""

from __future__ import annotations

import secrets
import string

from ..core import scrypt

# OCPP 2.0.1 BasicAuthPassword and the 1.6 security white paper: 16 to 40 characters.
MIN_LENGTH = 16
MAX_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits


class PasswordError(ValueError):
    pass


def check(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordError(
            f"a station password has {MIN_LENGTH} to {MAX_LENGTH} characters, not {len(password)}"
        )
    if not password.isprintable() or not password.isascii():
        raise PasswordError("a station password is printable ASCII")


def generate() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def hash_password(password: str) -> str:
    check(password)
    return scrypt.salted_hash(password)


def verify(password: str, stored: str) -> bool:
    return scrypt.verify(password, stored)
