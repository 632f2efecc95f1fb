"""Roles and the permission table: the one place that says who may do what.

One role model covers both product documents: the print-farm roles (owner,
admin, operator, viewer) and the field-service ones, where "lead
technician" is ``operator`` and "technician" is its own role; ``service``
is the identity hubs act with.  Every route names one permission from
:data:`PERMISSIONS` (or :data:`PUBLIC`); the role test matrix and the
OpenAPI spec are generated from the same declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "Role",
    "PERMISSIONS",
    "PUBLIC",
    "HUMAN_ROLES",
    "DISPATCHER_ROLES",
    "allows",
    "may_manage_owners",
    "roles_for",
]


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    OPERATOR = "operator"  # = "lead technician" of the field-service document
    TECHNICIAN = "technician"
    VIEWER = "viewer"
    SERVICE = "service"  # hubs and other machine identities


PUBLIC = "public"  # no token needed (auth, health, signed object URLs, the spec)

R = Role
ALL_ROLES = frozenset(Role)
HUMAN_ROLES = frozenset({R.OWNER, R.ADMIN, R.OPERATOR, R.TECHNICIAN, R.VIEWER})
ADMINS = frozenset({R.OWNER, R.ADMIN})
DISPATCHER_ROLES = frozenset({R.OWNER, R.ADMIN, R.OPERATOR})
FIELD_ROLES = DISPATCHER_ROLES | {R.TECHNICIAN}

PERMISSIONS: Mapping[str, frozenset[Role]] = {
    # the caller's own session and profile
    "self": ALL_ROLES,
    # members of the tenant (users / technicians)
    "members.read": HUMAN_ROLES,
    "members.manage": ADMINS,
    # field service
    "clients.read": HUMAN_ROLES,
    "clients.write": FIELD_ROLES,  # technicians add clients on site
    "clients.delete": DISPATCHER_ROLES,
    "equipment.read": HUMAN_ROLES,
    "equipment.write": FIELD_ROLES,
    "equipment.delete": DISPATCHER_ROLES,
    "jobs.read": HUMAN_ROLES,
    "jobs.manage": DISPATCHER_ROLES,  # create, edit, assign, cancel, delete
    "jobs.work": FIELD_ROLES,  # accept, decline, start, complete (own jobs; dispatchers any)
    # print farm
    "hubs.read": HUMAN_ROLES | {R.SERVICE},
    "hubs.manage": ADMINS,  # claim, rename, release
    "printers.read": HUMAN_ROLES | {R.SERVICE},
    "printers.write": DISPATCHER_ROLES,
    "print_jobs.read": HUMAN_ROLES | {R.SERVICE},
    "print_jobs.manage": DISPATCHER_ROLES,  # submit, pause, resume, cancel
    "telemetry.read": HUMAN_ROLES | {R.SERVICE},
    # files
    "files.read": HUMAN_ROLES | {R.SERVICE},
    "files.write": FIELD_ROLES,
    "files.delete": DISPATCHER_ROLES,
    # diagnostic sessions (the session actor also requires participation for
    # sending, leaving and its socket; dispatchers may invite and complete)
    "sessions.read": HUMAN_ROLES,
    "sessions.create": FIELD_ROLES,
    "sessions.participate": FIELD_ROLES,
    # knowledge base (manuals) and the AI assistant's accounting; global
    # manuals are managed only with the `ensemble knowledge` command
    "knowledge.read": HUMAN_ROLES,
    "knowledge.manage": ADMINS,  # upload and delete the tenant's own manuals
    "ai.usage": ADMINS,
    # administration
    "audit.read": ADMINS,
    "actors.inspect": ADMINS,
}


def allows(role: str, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    return role in PERMISSIONS[permission]


def roles_for(permission: str) -> frozenset[Role]:
    return ALL_ROLES if permission == PUBLIC else PERMISSIONS[permission]


def may_manage_owners(role: str) -> bool:
    """Granting, revoking or removing the owner role takes an owner."""
    return role == R.OWNER
