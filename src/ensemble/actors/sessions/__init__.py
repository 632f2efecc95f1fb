"""Diagnostic sessions: technicians, readings, photos and an AI assistant in one live room.

``DiagnosticSession`` is the behavior (pure rules in ``_decide``, the reducer
in ``_state``, client-facing shapes in ``_views``); ``AiRunner`` is the
background work that streams an assistant's answer into a session.
"""

from ensemble.actors.sessions._ai import AiRunner
from ensemble.actors.sessions._behavior import PROJECT_SQL, PROJECTED_EVENTS, DiagnosticSession
from ensemble.actors.sessions._decide import AI_NAME, DISPATCHER_ROLES, message_id
from ensemble.actors.sessions._limits import (
    CLOSE_AUTH_FAILED,
    CLOSE_NOT_PARTICIPANT,
    CLOSE_SESSION_COMPLETED,
    AiBusy,
    SessionCompleted,
    SessionLimits,
)
from ensemble.actors.sessions._rules import MODES
from ensemble.actors.sessions._state import AI_PARTICIPANT, AiRequest, Participant, SessionInfo, SessionState
from ensemble.actors.sessions._views import event_frame, participant_view, session_view, state_frame

__all__ = [
    "AI_NAME",
    "AI_PARTICIPANT",
    "AiBusy",
    "AiRequest",
    "AiRunner",
    "CLOSE_AUTH_FAILED",
    "CLOSE_NOT_PARTICIPANT",
    "CLOSE_SESSION_COMPLETED",
    "DISPATCHER_ROLES",
    "DiagnosticSession",
    "MODES",
    "PROJECTED_EVENTS",
    "PROJECT_SQL",
    "Participant",
    "SessionCompleted",
    "SessionInfo",
    "SessionLimits",
    "SessionState",
    "event_frame",
    "message_id",
    "participant_view",
    "session_view",
    "state_frame",
]
