"""Which forwarded commands are sent again after the owner died with them: a join only when it
carries a join key (the same key again gets the seat the first one took, never a second)."""

from __future__ import annotations

from tuiz.cluster.forward import _keyed_join, _keyed_rest_join

KEY = "0f4c6a1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5"


def test_a_join_is_resent_only_with_its_key() -> None:
    assert _keyed_join("game:join", {"pin": "123456", "nickname": "A", "joinKey": KEY})
    assert not _keyed_join("game:join", {"pin": "123456", "nickname": "A"})
    assert not _keyed_join("game:join", {"pin": "123456", "joinKey": 12345})
    assert not _keyed_join("game:flow:next", {"gameId": "g", "joinKey": KEY})
    assert not _keyed_join("game:join", [KEY])


def test_a_rest_join_is_resent_only_with_its_key() -> None:
    assert _keyed_rest_join(
        b'{"player_name": "A", "device_id": "d", "join_key": "%s"}' % KEY.encode()
    )
    assert not _keyed_rest_join(b'{"player_name": "A", "device_id": "d"}')
    assert not _keyed_rest_join(b'{"player_name": "A", "join_key": null}')
    assert not _keyed_rest_join(b"not json")
    assert not _keyed_rest_join(b'["join_key"]')
