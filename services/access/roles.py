"""Roles and rights: pure, no I/O.

Every operation of the HTTP API needs one right; a role is the set of rights it grants.
"""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "operator", "finance", "admin"]
Right = Literal["read", "operate", "finance", "audit", "admin"]

ROLES: tuple[Role, ...] = get_args(Role)
RIGHTS: tuple[Right, ...] = get_args(Right)

GRANTS: dict[Role, frozenset[Right]] = {
    # Reads everything but users and API tokens.
    "viewer": frozenset({"read"}),
    # Also stations, id tokens, meter keys, time zones and commands to stations.
    "operator": frozenset({"read", "operate"}),
    # Also tariffs, tariff assignments, review decisions, exports and the audit trail.
    "finance": frozenset({"read", "finance", "audit"}),
    # Everything, users and API tokens included.
    "admin": frozenset({"read", "operate", "finance", "audit", "admin"}),
}


def may(role: str, right: Right) -> bool:
    return right in GRANTS.get(role, frozenset())  # type: ignore[call-overload]


def roles_with(right: Right) -> list[Role]:
    return [role for role in ROLES if right in GRANTS[role]]


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role
