"""Live games: the application layer between the transports and the pure engine.

One `GameRunner` per game is the only holder of its state and the only caller of the engine:
every change goes decide → persist → apply → publish on that one path. `views` produces
every outgoing payload for its audience (host, the player itself, other players, public,
service), so what a player may see before a reveal is decided in one place. Socket.IO
implements the `Publisher` port; REST and sockets both call this layer, never each other.
"""
