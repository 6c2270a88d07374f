"""This process as a member of a cluster (REDIS_URL set): the bus, the router, failover.

Also the sticky-session tag: with `TUIZ_NODE` set, every Engine.IO session id starts with
`<node>.`, so a load balancer can send each long-polling request of a session to the process
that holds it by reading the `sid` query argument alone (deploy/nginx.conf), whatever the
client's address or cookies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuiz.cluster.bus import ClusterBus
from tuiz.cluster.deliver import ClusterPublisher
from tuiz.cluster.failover import Failover
from tuiz.cluster.fanout import RedisFanout
from tuiz.cluster.forward import ASGIApp, GameRouter
from tuiz.cluster.presence import Presence

if TYPE_CHECKING:
    from tuiz.live.hub import GameHub
    from tuiz.metrics import Metrics
    from tuiz.realtime.server import Realtime


class ClusterNode:
    def __init__(self, url: str, hub: GameHub, realtime: Realtime, api: ASGIApp) -> None:
        settings = hub.settings
        self.bus = ClusterBus(url, hub.owner, timeout=settings.forward_timeout_ms / 1000)
        manager = realtime.sio.manager
        self.presence = Presence(self.bus.redis, hub.owner, lambda: manager.rooms.get("/", {}))
        if isinstance(manager, RedisFanout):
            manager.room_changed = self.presence.changed
        realtime.room_size = self.presence.size
        self.router = GameRouter(self.bus, hub, realtime, api, self.presence)
        if isinstance(manager, RedisFanout):  # other processes' sockets: the bus's stream
            hub.publisher = ClusterPublisher(realtime.sio, self.bus)
        self.failover = Failover(hub)

    def observe(self, metrics: Metrics) -> None:
        """Forwarded commands, those served for other processes, failures, adopted games."""
        bus, failover = self.bus, self.failover
        metrics.observe(
            "tuiz_cluster_forwarded",
            "Commands this process sent to a game's owner",
            lambda: bus.forwarded,
            counter=True,
        )
        metrics.observe(
            "tuiz_cluster_served",
            "Commands this process ran for sockets and requests on other processes",
            lambda: bus.served,
            counter=True,
        )
        metrics.observe(
            "tuiz_cluster_failed",
            "Forwards that got UNAVAILABLE (Redis down, owner gone or too slow)",
            lambda: bus.failed,
            counter=True,
        )
        metrics.observe(
            "tuiz_cluster_up",
            "1 while this process listens for other processes' commands",
            lambda: 1.0 if bus.up else 0.0,
            counter=False,
        )
        metrics.observe(
            "tuiz_games_adopted",
            "Games this process took over from a process that died",
            lambda: failover.adopted,
            counter=True,
        )

    def start(self) -> None:
        self.bus.start()
        self.presence.start()
        self.failover.start()

    async def stop_failover(self) -> None:
        """First on shutdown: this process must not take up games while it lets them go."""
        await self.failover.stop()

    async def close(self) -> None:
        await self.failover.stop()
        await self.presence.stop()
        await self.bus.close()


def tag_session_ids(eio: Any, node: str) -> None:
    """Engine.IO session ids of this process start with `<node>.` (see the module doc)."""
    generate = eio.generate_id

    def tagged() -> str:
        return f"{node}.{generate()}"

    eio.generate_id = tagged
