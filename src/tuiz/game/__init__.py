"""The game engine: a sans-I/O state machine for one live game, plus scoring and views.

`model.py` holds the vocabulary (quiz, settings, commands, events, errors); `engine.py` the rules:
`Game.handle(command, now_ms) -> events` decides, `Game.apply(event)` evolves. Replaying a
game's events with `apply` rebuilds exactly the live state, which is how crash recovery and
`tuiz replay` work. No clocks, timers, sockets or databases here: the runtime owns those.
"""
