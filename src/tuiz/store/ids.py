"""Row ids made in this process, time-ordered (UUID version 7)."""

from __future__ import annotations

import os
import time
import uuid

from asyncpg.pgproto import pgproto

# Version-7 UUIDs (RFC 9562: Unix time in ms, then 74 random bits) made in bulk: one urandom
# call per batch, the time and the version/variant bits set with slice assignments and
# `bytes.translate` (C speed) -- uuid.uuid4() per event costs more than the rest of the row.
# Time-ordered, so the rows of a batch land on the primary key's last pages: a random (v4)
# key writes into a random leaf page per row, and after each checkpoint a full-page image of
# it to the WAL (a 512-event batch: 9.6-10.3 ms in PostgreSQL with v4 ids, 5.4-5.5 ms with
# these; 3,000 participations written 8 at a time into a table of 510,000: 57-63 us per row
# with v4 ids, 50-53 with these; bench/README.md, 2026-12-07e).
_V7_VERSION = bytes((b & 0x0F) | 0x70 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def new_ids(n: int) -> list[uuid.UUID]:
    raw = bytearray(os.urandom(16 * n))
    for i, byte in enumerate((time.time_ns() // 1_000_000).to_bytes(6, "big")):
        raw[i::16] = bytes((byte,)) * n
    raw[6::16] = raw[6::16].translate(_V7_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    return [pgproto.UUID(bytes(raw[i : i + 16])) for i in range(0, 16 * n, 16)]


def new_id() -> uuid.UUID:
    return new_ids(1)[0]
