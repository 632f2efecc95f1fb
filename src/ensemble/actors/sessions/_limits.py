"""The numbers a diagnostic session lives by, and the errors only sessions raise.

Limits come from ``ENSEMBLE_SESSION_*`` environment variables (e.g.
``ENSEMBLE_SESSION_MAX_TEXT_CHARS=2000``) and default to values sized for
a technician on a phone: a chat message is a few sentences, a session a few
hundred messages.  The behavior enforces the content limits (so REST and the
socket refuse the same things); the gateway enforces the send rate and the
authentication deadline.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ensemble.errors import ConfigError, Conflict

__all__ = [
    "SessionLimits",
    "SessionCompleted",
    "AiBusy",
    "CLOSE_SESSION_COMPLETED",
    "CLOSE_NOT_PARTICIPANT",
    "CLOSE_AUTH_FAILED",
]

# WebSocket close codes of the session socket (the runtime adds 4100 "slow
# consumer" and 4101 "actor reset"; both mean "reconnect with since").
CLOSE_SESSION_COMPLETED = 4410  # read-only now: do not reconnect
CLOSE_NOT_PARTICIPANT = 4403  # left, or never was a participant: do not reconnect
CLOSE_AUTH_FAILED = 4401  # no valid token in time: log in again


class SessionCompleted(Conflict):
    """The session is completed and read-only."""

    code = "session_completed"
    close_code = CLOSE_SESSION_COMPLETED


class AiBusy(Conflict):
    """The session's one AI answer is still being written."""

    code = "ai_busy"


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_text_chars: int = 4000
    max_caption_chars: int = 500
    max_note_chars: int = 500
    max_summary_chars: int = 10_000
    max_title_chars: int = 200
    max_attachment_bytes: int = 10 << 20
    max_messages: int = 5000  # per session; bounds the de-duplication memory too
    max_participants: int = 25
    recent_messages: int = 50  # in session_state
    ai_history_messages: int = 20  # conversation handed to the assistant
    ai_timeout_s: float = 60.0
    ai_grace_s: float = 15.0  # after the timeout, the durable alarm ends a lost answer
    ai_max_concurrent: int = 16  # answers in flight in the whole process
    send_per_minute: int = 60  # per participant: messages, readings, attachments
    send_burst: int = 30
    typing_per_minute: int = 60  # excess typing frames are dropped silently
    auth_timeout_s: float = 5.0  # first-frame authentication deadline

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "SessionLimits":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"ENSEMBLE_SESSION_{f.name.upper()}"
            raw = env.get(name)
            if raw is None:
                continue
            kind = float if isinstance(getattr(cls(), f.name), float) else int
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"invalid setting {name}: expected a number") from None
            if value <= 0:
                raise ConfigError(f"invalid setting {name}: must be positive")
            values[f.name] = value
        return replace(cls(**values), **overrides)
