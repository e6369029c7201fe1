"""Station passwords (OCPP security profiles 1 and 2), stored as salted scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string

# OCPP 2.0.1 BasicAuthPassword and the 1.6 security white paper: 16 to 40 characters.
MIN_LENGTH = 16
MAX_LENGTH = 40
_N, _R, _P = 2**14, 8, 1
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
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_N}${_R}${_P}${encoded[0]}${encoded[1]}"


def verify(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        given = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(given, expected)
