"""REST reads of connections, sessions, events and participants, under each caller's RLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import jwt
import pytest

from tests.factories import make_game, make_player, make_user
from tests.servers import ServerProcess, run_server

SECRET = "test-jwt-secret-with-enough-length-0123456789"
SERVICE_KEY = "test-service-key"


def token(user: UUID, *, secret: str = SECRET, ttl: int = 600) -> str:
    claims = {"sub": str(user), "role": "authenticated", "exp": int(time.time()) + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(scope="module")
def world(module_db_url: str) -> dict[str, Any]:
    """Two users, a guest device, a game hosted by user A that the guest plays, and rows."""

    async def build() -> dict[str, Any]:
        conn = await asyncpg.connect(module_db_url)
        try:
            a, b = await make_user(conn), await make_user(conn)
            game = await make_game(conn, owner=a)
            host = await make_player(conn, game, "dev-host-a", "Host", is_host=True)
            guest = await make_player(conn, game, "dev-guest", "Guest")
            rows = [
                ("sock-a1", "dev-a", a),
                ("sock-a2", "dev-a", a),
                ("sock-b", "dev-b", b),
                ("sock-g", "dev-guest", None),
            ]
            for socket_id, device, user in rows:
                await conn.execute(
                    "INSERT INTO websocket_connections (socket_id, device_id, user_id)"
                    " VALUES ($1, $2, $3)",
                    socket_id,
                    device,
                    user,
                )
            await conn.execute(
                "UPDATE websocket_connections SET status = 'disconnected'"
                " WHERE socket_id = 'sock-a1'"
            )
            await conn.execute(
                "INSERT INTO room_participants (game_id, socket_id, device_id, player_id)"
                " VALUES ($1, 'sock-g', 'dev-guest', $2)",
                game,
                guest,
            )
            for i in range(5):
                await conn.execute(
                    "SELECT log_game_event(p_game_id => $1, p_event_type => 'test',"
                    " p_action => 'a', p_payload => $2::jsonb)",
                    game,
                    f'{{"i": {i}}}',
                )
            return {"a": a, "b": b, "game": game, "host": host, "guest": guest}
        finally:
            await conn.close()

    return asyncio.run(build())


@pytest.fixture(scope="module")
def server(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("api")
    with run_server(module_db_url, tmp, TUIZ_JWT_SECRET=SECRET, TUIZ_SERVICE_KEY=SERVICE_KEY) as s:
        yield s


def get(server: ServerProcess, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=10)


def sockets(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {item["socket_id"] for item in response.json()["items"]}


def test_connections_visible_per_caller(server: ServerProcess, world: dict[str, Any]) -> None:
    service = {"authorization": f"Bearer {SERVICE_KEY}"}
    assert sockets(get(server, "/websocket-connections", **service)) == {
        "sock-a1",
        "sock-a2",
        "sock-b",
        "sock-g",
    }
    assert sockets(get(server, "/websocket-connections", apikey=SERVICE_KEY)) == {
        "sock-a1",
        "sock-a2",
        "sock-b",
        "sock-g",
    }
    user_a = {"authorization": f"Bearer {token(world['a'])}"}
    assert sockets(get(server, "/websocket-connections", **user_a)) == {"sock-a1", "sock-a2"}
    user_b = {"authorization": f"Bearer {token(world['b'])}"}
    assert sockets(get(server, "/websocket-connections", **user_b)) == {"sock-b"}
    # A claimed device id is not a credential: a guest reads no connection rows (issue 10).
    for headers in ({"x-device-id": "dev-guest"}, {}):
        denied = get(server, "/websocket-connections", **headers)
        assert denied.status_code == 401 and denied.json()["error"] == "UNAUTHORIZED"


def test_filters_and_paging(server: ServerProcess, world: dict[str, Any]) -> None:
    service = {"authorization": f"Bearer {SERVICE_KEY}"}
    assert sockets(get(server, "/websocket-connections?status=disconnected", **service)) == {
        "sock-a1"
    }
    assert sockets(get(server, "/websocket-connections?device_id=dev-a", **service)) == {
        "sock-a1",
        "sock-a2",
    }
    assert sockets(get(server, "/websocket-connections/active", **service)) == {
        "sock-a2",
        "sock-b",
        "sock-g",
    }
    first = get(server, "/websocket-connections?limit=3", **service).json()
    assert len(first["items"]) == 3 and first["next_offset"] == 3
    rest = get(server, "/websocket-connections?limit=3&offset=3", **service).json()
    assert len(rest["items"]) == 1 and rest["next_offset"] is None
    seen = {i["socket_id"] for i in first["items"] + rest["items"]}
    assert seen == {"sock-a1", "sock-a2", "sock-b", "sock-g"}
    bad = get(server, "/websocket-connections?status=bogus", **service)
    assert bad.status_code == 422 and bad.json()["error"] == "VALIDATION_ERROR"


def test_stats_need_the_service_key(server: ServerProcess, world: dict[str, Any]) -> None:
    denied = get(
        server, "/websocket-connections/stats", authorization=f"Bearer {token(world['a'])}"
    )
    assert denied.status_code == 403 and denied.json()["error"] == "FORBIDDEN"
    stats = get(server, "/websocket-connections/stats", authorization=f"Bearer {SERVICE_KEY}")
    assert stats.status_code == 200
    body = stats.json()
    assert body["active_connections"] == 3
    assert sum(day["total_connections"] for day in body["daily"]) == 4


def test_device_sessions(server: ServerProcess, world: dict[str, Any]) -> None:
    mine = get(server, "/device-sessions/dev-a", authorization=f"Bearer {token(world['a'])}")
    assert mine.status_code == 200 and mine.json()["total_connections"] == 2
    theirs = get(server, "/device-sessions/dev-a", authorization=f"Bearer {token(world['b'])}")
    assert theirs.status_code == 404 and theirs.json()["error"] == "NOT_FOUND"
    guest = get(server, "/device-sessions/dev-guest", **{"x-device-id": "dev-guest"})
    assert guest.status_code == 401


def test_game_events_for_the_service_role_only(
    server: ServerProcess, world: dict[str, Any]
) -> None:
    """The raw log (answer keys, device ids) is the service's; members get 403 (issue 10)."""
    path = f"/games/{world['game']}/events"
    service = {"authorization": f"Bearer {SERVICE_KEY}"}
    page = get(server, f"{path}?limit=2", **service).json()
    assert [e["seq"] for e in page["items"]] == [1, 2] and page["next_offset"] == 2
    rest = get(server, f"{path}?after_seq=2", **service).json()
    assert [e["seq"] for e in rest["items"]] == [3, 4, 5] and rest["next_offset"] is None
    for headers in (
        {"x-device-id": "dev-guest"},
        {"authorization": f"Bearer {token(world['a'])}"},
        {"authorization": f"Bearer {token(world['b'])}"},
        {},
    ):
        denied = get(server, path, **headers)
        assert denied.status_code == 403 and denied.json()["error"] == "FORBIDDEN"


def test_participants(server: ServerProcess, world: dict[str, Any]) -> None:
    """Members list the room by player, never by device id."""
    path = f"/games/{world['game']}/participants"
    guest = get(server, path, **{"x-device-id": "dev-guest"}).json()["items"]
    assert [p["player_id"] for p in guest] == [str(world["guest"])]
    assert all("device_id" not in p for p in guest)
    assert get(server, path).json()["items"] == []


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"authorization": "Bearer not-a-jwt"}, 401, "UNAUTHORIZED"),
        ({"x-device-id": "bad device"}, 422, "VALIDATION_ERROR"),
        ({"x-device-id": "x" * 300}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_credentials(
    server: ServerProcess, world: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    response = get(server, "/websocket-connections", **headers)
    assert response.status_code == status and response.json()["error"] == code


def test_expired_and_forged_tokens(server: ServerProcess, world: dict[str, Any]) -> None:
    expired = get(
        server, "/websocket-connections", authorization=f"Bearer {token(world['a'], ttl=-60)}"
    )
    assert expired.status_code == 401
    forged = get(
        server,
        "/websocket-connections",
        authorization=f"Bearer {token(world['a'], secret='another-secret-0123456789abcdef0')}",
    )
    assert forged.status_code == 401
