"""Real-time sockets follow their login: a logout, a removal or a lost role ends them.

REST checks the login session on every request (``sessions.session_role``);
a WebSocket is authenticated once, at the start.  ``LoginWatch`` closes the
gap: every open user socket is registered with its login session and the
permission it needs, and a sweep, one query for all of them, closes those
whose session ended (4401: log in again) or whose role no longer grants the
permission (4403).  A sweep every ``SWEEP_INTERVAL_S`` bounds how long a
revoked socket can keep listening.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from ensemble.errors import EnsembleError
from ensemble.gateway._permissions import allows
from ensemble.gateway.realtime._errors import SocketClosed
from ensemble.log import get_logger
from ensemble.persistence.database import Database
from ensemble.persistence.repos import sessions

if TYPE_CHECKING:
    from ensemble.gateway.realtime import RealtimeSocket
    from ensemble.server import Services

__all__ = ["LoginWatch", "login_watch", "watch_logins", "SWEEP_INTERVAL_S"]

SWEEP_INTERVAL_S = 30.0
CLOSE_LOGIN_ENDED = 4401
CLOSE_ROLE_LOST = 4403

log = get_logger("ensemble.gateway.logins")


@dataclass(frozen=True, slots=True)
class _Watched:
    socket: RealtimeSocket
    session_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    permission: str


class LoginWatch:
    def __init__(self) -> None:
        self._watched: dict[int, _Watched] = {}
        self.closed_total = 0

    def __len__(self) -> int:
        return len(self._watched)

    def watch(
        self, socket: RealtimeSocket, *, session_id: uuid.UUID, user_id: uuid.UUID, tenant_id: uuid.UUID,
        permission: str,
    ) -> Callable[[], None]:
        """Register an accepted socket; call the returned function when it ends."""
        key = id(socket)
        self._watched[key] = _Watched(socket, session_id, user_id, tenant_id, permission)

        def unwatch() -> None:
            self._watched.pop(key, None)

        return unwatch

    async def sweep(self, db: Database) -> int:
        """Check every watched socket's login in one query; close the ones it no longer allows."""
        watched = [w for w in self._watched.values() if not w.socket.closed]
        if not watched:
            return 0
        keys = list({(w.session_id, w.user_id, w.tenant_id) for w in watched})
        roles = await db.run(sessions.session_roles, keys)
        closed = 0
        for w in watched:
            role = roles.get(w.session_id)
            if role is None:
                code, error, message = CLOSE_LOGIN_ENDED, "unauthenticated", "your login ended: log in again"
            elif not allows(role, w.permission):
                code, error, message = CLOSE_ROLE_LOST, "forbidden", f"your role ({role}) no longer allows this"
            else:
                continue
            try:
                w.socket.send({"type": "error", "error": error, "message": message})
                await w.socket.close(code, message)
            except SocketClosed:
                continue
            closed += 1
        self.closed_total += closed
        if closed:
            log.info("sockets_closed_for_login", sockets=closed)
        return closed


def login_watch(services: "Services") -> LoginWatch:
    watch: LoginWatch | None = services.extras.get("login_watch")
    if watch is None:
        watch = services.extras["login_watch"] = LoginWatch()
    return watch


async def watch_logins(services: "Services", interval_s: float = SWEEP_INTERVAL_S) -> None:
    """Sweep every ``interval_s`` for as long as the gateway serves."""
    watch = login_watch(services)
    while True:
        await trio.sleep(interval_s)
        try:
            await watch.sweep(services.db)
        except EnsembleError as exc:  # the database is away: sockets stay until the next round
            log.warning("login_sweep_failed", error=exc.message)
