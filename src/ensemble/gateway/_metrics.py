"""Prometheus metrics for ``/metrics``.

The gateway's own metrics (requests, latency, WebSocket connections) live
in a registry per app, so several apps in one process (tests) never collide.
Everything else is pulled at scrape time from callbacks registered with
:func:`register_collector`: the database pool now, live actors once the
actor runtime registers its callback from the composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Union

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from ensemble.log import get_logger

if TYPE_CHECKING:
    from ensemble.server import Services

__all__ = ["GatewayMetrics", "register_collector", "Sample", "MetricCallback"]

log = get_logger("ensemble.gateway.metrics")

# (name, help, labels, value): a gauge sample, for callers that would rather
# not import prometheus_client.
Sample = tuple[str, str, Mapping[str, str], float]
MetricCallback = Callable[[], Iterable[Union[Sample, Metric]]]


def register_collector(services: "Services", callback: MetricCallback) -> None:
    """Have ``/metrics`` call ``callback()`` on every scrape.

    The callback returns ``prometheus_client`` metric families, or plain
    ``(name, help, labels, value)`` gauge samples; samples sharing a name
    become one family.  It runs on the event loop: keep it to reading
    counters (e.g. ``actors.statistics()``), no I/O.  A callback that raises
    is logged and skipped; the scrape still answers.
    """
    services.metric_callbacks.append(callback)


class _CallbackCollector:
    def __init__(self, services: "Services", extra: Callable[[], Iterable[Sample]]) -> None:
        self._services = services
        self._extra = extra

    def collect(self) -> Iterable[Metric]:
        samples: list[Sample] = list(self._extra())
        try:
            stats = self._services.db.statistics()
            samples += [
                ("ensemble_db_pool_size", "Open Postgres connections in the pool.", {}, stats["pool_size"]),
                ("ensemble_db_pool_idle", "Idle Postgres connections in the pool.", {}, stats["pool_idle"]),
                ("ensemble_db_pool_max", "Maximum Postgres pool size.", {}, stats["pool_max"]),
            ]
        except Exception as exc:  # the pool may be closing
            log.warning("metrics_db_statistics_failed", error=type(exc).__name__)
        families: list[Metric] = []
        for callback in list(self._services.metric_callbacks):
            try:
                for item in callback():
                    if isinstance(item, Metric):
                        families.append(item)
                    else:
                        samples.append(item)
            except Exception as exc:
                log.warning("metrics_callback_failed", callback=getattr(callback, "__qualname__", "?"), error=type(exc).__name__)
        yield from families
        yield from _gauges(samples)


def _gauges(samples: Iterable[Sample]) -> Iterable[Metric]:
    grouped: dict[str, tuple[str, list[tuple[Mapping[str, str], float]]]] = {}
    for name, help_text, labels, value in samples:
        grouped.setdefault(name, (help_text, []))[1].append((labels, value))
    for name, (help_text, values) in grouped.items():
        label_names = sorted({k for labels, _ in values for k in labels})
        family = GaugeMetricFamily(name, help_text, labels=label_names)
        for labels, value in values:
            family.add_metric([str(labels.get(k, "")) for k in label_names], float(value))
        yield family


class GatewayMetrics:
    def __init__(self, services: "Services", extra: Callable[[], Iterable[Sample]] = lambda: ()) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "ensemble_http_requests", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "ensemble_http_request_duration_seconds", "Time to produce the response (not to stream it).",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        # The real-time lane increments/decrements this per socket kind
        # (session, dashboard, hub).
        self.websocket_connections = Gauge(
            "ensemble_websocket_connections", "Open WebSocket connections.", ["kind"], registry=self.registry,
        )
        self.registry.register(_CallbackCollector(services, extra))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
