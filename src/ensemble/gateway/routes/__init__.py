"""Every REST resource; importing this package declares all routes."""

from __future__ import annotations

from quart import Blueprint

from ensemble.gateway import _health, _openapi
from ensemble.gateway.routes import (
    admin,
    audit,
    auth,
    clients,
    equipment,
    files,
    hubs,
    jobs,
    knowledge,
    objects,
    print_jobs,
    printers,
    sessions,
    telemetry,
    users,
)

__all__ = ["BLUEPRINTS"]

BLUEPRINTS: list[Blueprint] = [
    module.api.blueprint
    for module in (
        _health, _openapi, auth, users, clients, equipment, jobs, hubs, printers, print_jobs, telemetry, files, objects,
        audit, admin, sessions, knowledge,
    )
]
