"""Settings of the real-time lane (environment ``ENSEMBLE_WS_*``).

They live here rather than in :class:`ensemble.config.Settings` so the lane
stays one package; the frame size limit and the per-connection buffer are
shared with the rest of the server and read from there
(``ENSEMBLE_MAX_WS_MESSAGE_BYTES``, ``ENSEMBLE_ACTOR_SUBSCRIBER_BUFFER``).
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RealtimeSettings", "load_realtime_settings"]


class RealtimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENSEMBLE_WS_", extra="ignore", frozen=True)

    ping_interval_s: float = Field(20.0, gt=0, description="Ping a socket that has been silent this long.")
    idle_timeout_s: float = Field(
        60.0, gt=0, description="Close (1001) a socket that sent nothing, not even a pong, for this long."
    )
    handshake_timeout_s: float = Field(10.0, gt=0, description="Time allowed to send the HTTP request head.")
    max_head_bytes: int = Field(16 << 10, ge=1024, description="Largest request head the lane reads before routing.")
    close_timeout_s: float = Field(
        2.0, gt=0, description="How long to wait for the peer's close frame (and our last bytes) before dropping TCP."
    )
    permessage_deflate: bool = Field(
        False,
        description="Negotiate permessage-deflate. Off: compression costs CPU per socket and the frames "
        "are small JSON; when on, the server never keeps compression context so frames stay shareable.",
    )
    backlog: int = Field(4096, ge=16, description="listen() backlog (the kernel caps it at somaxconn).")
    bench_routes: bool = Field(
        False,
        validation_alias=AliasChoices("ENSEMBLE_BENCH_ROUTES", "ENSEMBLE_WS_BENCH_ROUTES"),
        description="Serve the unauthenticated /bench/rooms/{key}/ws route. Never in production.",
    )


def load_realtime_settings() -> RealtimeSettings:
    """From the environment (pydantic-settings fills every field)."""
    return RealtimeSettings()  # type: ignore[call-arg]
