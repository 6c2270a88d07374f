"""Prometheus metrics, one registry per app so tests and several apps in one process don't clash."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Reading(Collector):
    def __init__(self, name: str, help_text: str, read: Callable[[], float], counter: bool):
        self._name, self._help, self._read, self._counter = name, help_text, read, counter

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily if self._counter else GaugeMetricFamily
        yield family(self._name, self._help, value=self._read())


class Metrics:
    """Every metric tuiz exports at `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "tuiz_socket_connections", "Socket.IO connections open on this process", registry=r
        )
        self.connects = Counter(
            "tuiz_socket_connects_total", "Socket.IO connections accepted", registry=r
        )
        self.db_write_seconds = Histogram(
            "tuiz_db_write_seconds",
            "Latency of database write batches",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.loop_lag_seconds = Gauge(
            "tuiz_event_loop_lag_seconds", "How late the event loop ran a 100 ms timer", registry=r
        )
        self.errors = Counter(
            "tuiz_client_errors_total", "Errors sent to clients", ["code"], registry=r
        )
        self.redis_up = Gauge(
            "tuiz_redis_up", "1 while Redis fan-out is subscribed (0: down or not set)", registry=r
        )
        self.redis_messages = Counter(
            "tuiz_redis_messages_total",
            "Fan-out messages: published, received, or skipped while Redis was down",
            ["direction"],
            registry=r,
        )
        self.redis_faults = Counter(
            "tuiz_redis_faults_total", "Failed Redis publishes and lost subscriptions", registry=r
        )

    def observe(
        self, name: str, help_text: str, read: Callable[[], float], *, counter: bool
    ) -> None:
        """Export a value another component keeps itself (read at scrape time, no hot-path
        cost): the event log's counters, the number of live games."""
        self.registry.register(_Reading(name, help_text, read, counter))

    async def watch_loop_lag(self, interval: float = 0.1) -> None:
        """Sample event-loop lag forever: the gap between when a sleep should end and did."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(interval)
            self.loop_lag_seconds.set(max(0.0, time.perf_counter() - started - interval))
