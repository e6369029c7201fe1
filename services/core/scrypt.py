"""Salted scrypt hashes of secrets (station and user passwords): slow on purpose. No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1


def salted_hash(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P)
    salt_b64, digest_b64 = (base64.b64encode(part).decode() for part in (salt, digest))
    return f"scrypt${_N}${_R}${_P}${salt_b64}${digest_b64}"


def verify(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(given, base64.b64decode(digest))


# Checked when there is no hash to check against (an unknown name, a station without a
# password), so that the answer takes as long either way.
DUMMY_HASH = (
    f"scrypt${_N}${_R}${_P}${base64.b64encode(bytes(16)).decode()}"
    f"${base64.b64encode(bytes(64)).decode()}"
)
