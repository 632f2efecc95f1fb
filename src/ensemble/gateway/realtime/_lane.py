"""State shared by every real-time socket of one server process."""

from __future__ import annotations

import gc
import time

from typing import TYPE_CHECKING, Any

import trio

from ensemble.gateway.realtime._settings import RealtimeSettings
from ensemble.gateway.realtime._wire import FrameBytesCache

if TYPE_CHECKING:
    from ensemble.gateway.realtime._socket import RealtimeSocket
    from ensemble.server import Services

__all__ = ["Lane", "GcWatch"]

RECV_BUFFER_BYTES = 64 << 10


class GcWatch:
    """Collections and pause times per generation (``gc.callbacks``).

    Many live connections mean many long-lived objects for the collector to
    traverse; these counters show what that costs (and what ``gc.freeze()``
    and a higher gen-0 threshold, see ``server._tune_gc``, buy).
    """

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self.max_pause_s = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = int(info.get("generation", 0))
        pause = time.perf_counter() - self._started
        self.collections[generation] += 1
        self.pause_s[generation] += pause
        if pause > self.max_pause_s[generation]:
            self.max_pause_s[generation] = pause

    def install(self) -> None:
        gc.callbacks.append(self)

    def remove(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)


class Lane:
    """One per process: the sockets, the frame cache, the shared receive buffer.

    Every socket reads into the same buffer and copies out only what it got,
    so an idle connection holds no receive buffer of its own (a per-socket
    64 KiB buffer would dominate the memory of an idle connection).
    """

    def __init__(
        self,
        services: "Services",
        settings: RealtimeSettings,
        *,
        max_message_bytes: int,
        buffer_frames: int,
    ) -> None:
        self.services = services
        self.settings = settings
        self.max_message_bytes = max_message_bytes
        self.buffer_frames = buffer_frames
        self.cache = FrameBytesCache()
        self.recv_buffer = bytearray(RECV_BUFFER_BYTES)
        self.recv_view = memoryview(self.recv_buffer)
        self.sockets: set[RealtimeSocket] = set()
        self.shutting_down = False
        self._nursery: trio.Nursery | None = None
        # Counters for statistics(); none is touched per delivery.
        self.connections_total = 0
        self.writer_tasks_started = 0
        self.slow_consumer_closes = 0
        self.idle_closes = 0
        self.bad_frames = 0
        self.handler_errors = 0
        self.gc = GcWatch()

    def bind(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def spawn_writer(self, socket: "RealtimeSocket") -> bool:
        """Start a writer task for a socket whose kernel buffer filled up.

        Called from ``deliver()`` inside an actor's turn, so it must not
        raise: if no task can be started (the server is stopping) the
        socket is given up instead (False).
        """
        if self._nursery is None:
            return False
        try:
            self._nursery.start_soon(socket._drain)
        except RuntimeError:  # the nursery is closed to new tasks
            return False
        self.writer_tasks_started += 1
        return True

    # -- keepalive ------------------------------------------------------------------
    async def keepalive(self) -> None:
        """One task for all sockets: ping the silent ones, close the dead ones.

        A timer per socket would cost a task (and memory) per idle
        connection; a sweep over a few thousand sockets costs microseconds.
        """
        ping, idle = self.settings.ping_interval_s, self.settings.idle_timeout_s
        period = min(max(min(ping, idle) / 4, 0.02), 5.0)
        while True:
            await trio.sleep(period)
            now = trio.current_time()
            for socket in list(self.sockets):
                socket._keepalive(now, ping, idle)

    def shutdown(self) -> None:
        """Close every socket with 1001; handlers see SocketClosed and return."""
        self.shutting_down = True
        for socket in list(self.sockets):
            socket._going_away()

    def metric_samples(self) -> list[tuple[str, str, dict[str, str], float]]:
        """For ``/metrics`` (``register_collector`` format): counters, no I/O."""
        stats = self.statistics()
        return [
            ("ensemble_realtime_sockets_open", "Real-time WebSockets open.", {}, stats["open_sockets"]),
            ("ensemble_realtime_connections_total", "Real-time WebSockets accepted since start.", {},
             stats["connections_total"]),
            ("ensemble_realtime_writers_running", "Sockets with a backlog (kernel buffer full).", {},
             stats["writers_running"]),
            ("ensemble_realtime_slow_consumer_closes_total", "Sockets closed with 4100.", {},
             stats["slow_consumer_closes"]),
            ("ensemble_realtime_idle_closes_total", "Sockets closed for idleness.", {}, stats["idle_closes"]),
            ("ensemble_realtime_bad_frames_total", "Incoming messages refused (BadFrame).", {}, stats["bad_frames"]),
            ("ensemble_realtime_handler_errors_total", "Real-time handlers that raised.", {},
             stats["handler_errors"]),
        ] + [
            sample
            for generation in range(3)
            for sample in (
                ("ensemble_gc_collections_total", "Garbage collections by generation.",
                 {"generation": str(generation)}, self.gc.collections[generation]),
                ("ensemble_gc_pause_seconds_total", "Time spent in garbage collection by generation.",
                 {"generation": str(generation)}, self.gc.pause_s[generation]),
                ("ensemble_gc_pause_max_seconds", "Longest garbage collection pause by generation.",
                 {"generation": str(generation)}, self.gc.max_pause_s[generation]),
            )
        ]

    def statistics(self) -> dict[str, Any]:
        open_sockets = len(self.sockets)
        writers = sum(1 for s in self.sockets if s._writer_running)
        return {
            "open_sockets": open_sockets,
            "connections_total": self.connections_total,
            "writers_running": writers,
            "writer_tasks_started": self.writer_tasks_started,
            "slow_consumer_closes": self.slow_consumer_closes,
            "idle_closes": self.idle_closes,
            "bad_frames": self.bad_frames,
            "handler_errors": self.handler_errors,
            "frame_encodings": self.cache.misses,
            "gc_collections": list(self.gc.collections),
            "gc_pause_ms": [round(p * 1000, 3) for p in self.gc.pause_s],
            "gc_max_pause_ms": [round(p * 1000, 3) for p in self.gc.max_pause_s],
        }
