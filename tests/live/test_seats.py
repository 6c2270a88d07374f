"""`Seats` finds a leaving socket's player from its own index, and keeps it in step with the
player -> sockets map through seating, leaving, moving and kicks."""

from __future__ import annotations

from tuiz.live.runner import Seats


def test_sockets_are_found_unseated_moved_and_kicked() -> None:
    seats = Seats()
    seats.seat("s1", "alice")
    seats.seat("s2", "alice")
    seats.seat("s3", "bob")
    assert seats.player_of("s2") == "alice" and seats.player_of("s3") == "bob"
    assert seats.unseat("s1") == "alice"
    assert seats.player_sids == {"alice": {"s2"}, "bob": {"s3"}}
    assert seats.unseat("s1") is None and seats.player_of("s1") is None
    seats.seat("s2", "bob")  # a socket speaks for one seat of a game
    assert seats.player_sids == {"alice": set(), "bob": {"s2", "s3"}}
    assert seats.remove_player("bob") == {"s2", "s3"}
    assert seats.player_of("s2") is None and seats.unseat("s3") is None
    assert seats.player_sids == {"alice": set()} and seats.player_by_sid == {}
