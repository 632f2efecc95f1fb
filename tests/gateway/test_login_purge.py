"""Spent logins are purged: expired refresh tokens, then sessions left without any."""

from __future__ import annotations

import uuid
from datetime import timedelta

import trio

from ensemble.persistence.repos import sessions
from ensemble.server import purge_spent_logins
from tests.gateway.conftest import Harness

WEEK_S = 7 * 86400.0


async def _counts(h: Harness, user_id: str) -> tuple[int, int]:
    async def run(conn):  # type: ignore[no-untyped-def]
        uid = uuid.UUID(user_id)
        n_sessions = await conn.fetchval("SELECT count(*) FROM auth_sessions WHERE user_id = $1", uid)
        n_tokens = await conn.fetchval(
            "SELECT count(*) FROM refresh_tokens t JOIN auth_sessions s ON s.id = t.session_id WHERE s.user_id = $1",
            uid,
        )
        return n_sessions, n_tokens

    return await h.db.run(run)


async def _age_logins(h: Harness, user_id: str, days: int) -> None:
    """Move every login of the user ``days`` into the past (created, issued and expiring)."""
    async def run(conn):  # type: ignore[no-untyped-def]
        uid = uuid.UUID(user_id)
        shift = timedelta(days=days)
        await conn.execute(
            "UPDATE refresh_tokens t SET issued_at = issued_at - $2::interval, expires_at = expires_at - $2::interval"
            " FROM auth_sessions s WHERE s.id = t.session_id AND s.user_id = $1", uid, shift)
        await conn.execute("UPDATE auth_sessions SET created_at = created_at - $2::interval WHERE user_id = $1",
                           uid, shift)

    await h.db.run(run)


async def test_only_logins_a_week_past_expiry_are_deleted(h: Harness) -> None:
    old = await h.signup()
    await h.login(old.email)  # a second session of the same user
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": old.refresh_token})
    assert r.status_code == 200  # the first session now has a used and a live token
    current = await h.signup()
    assert await _counts(h, old.user_id) == (2, 3)

    # 30-day refresh tokens: 36 days back they expired 6 days ago (kept), 38 days back 8 days ago (purged).
    await _age_logins(h, old.user_id, 36)
    await h.db.run(lambda conn: sessions.purge_spent(conn, grace_s=WEEK_S))
    assert await _counts(h, old.user_id) == (2, 3)

    await _age_logins(h, old.user_id, 2)
    await h.db.run(lambda conn: sessions.purge_spent(conn, grace_s=WEEK_S))
    assert await _counts(h, old.user_id) == (0, 0)
    # Someone else's live login is untouched and still works.
    assert await _counts(h, current.user_id) == (1, 1)
    assert (await current.get("/api/v1/me")).status_code == 200
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": current.refresh_token})
    assert r.status_code == 200


async def test_a_purged_refresh_token_is_refused_like_any_unknown_one(h: Harness) -> None:
    user = await h.signup()
    await _age_logins(h, user.user_id, 40)
    await h.db.run(lambda conn: sessions.purge_spent(conn, grace_s=WEEK_S))
    r = await h.http.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"


async def test_the_server_loop_purges_on_its_first_round(h: Harness) -> None:
    user = await h.signup()
    await _age_logins(h, user.user_id, 40)
    with trio.move_on_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: purge_spent_logins(h.db, interval_s=3600))
            with trio.fail_after(4):
                while await _counts(h, user.user_id) != (0, 0):
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
