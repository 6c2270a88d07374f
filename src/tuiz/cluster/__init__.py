"""Everything that spans tuiz processes: Redis fan-out of room emits (`fanout.py`).

Redis carries fan-out only, never state: when it is away each process keeps serving its own
clients and PostgreSQL still holds every event, so a client that missed a cross-process
message can catch up by `seq`.
"""
