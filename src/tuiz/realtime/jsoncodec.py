"""orjson behind the `json` module interface python-socketio expects (encoding is a hot path)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any, **_: Any) -> str:
    """`separators` and friends are accepted and ignored: orjson is always compact."""
    return orjson.dumps(value).decode()


def loads(value: str | bytes, **_: Any) -> Any:
    return orjson.loads(value)
