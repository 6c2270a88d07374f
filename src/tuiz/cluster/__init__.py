"""Everything that spans tuiz processes (with REDIS_URL): room fan-out (`fanout.py`), one owner
per live game (`ownership.py`), commands forwarded to that owner from any process (`bus.py`,
`forward.py`), failover of a dead owner's games (`failover.py`), room sizes across processes
(`presence.py`), wired by `node.py`.

Redis carries messages only, never state: when it is away each process keeps serving its own
clients and the games it owns, commands for games owned elsewhere get UNAVAILABLE, and
PostgreSQL still holds every event, so a client that missed a cross-process message catches up
by `seq`.
"""
