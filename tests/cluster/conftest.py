from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.redisproc import RedisProcess, own_redis


@pytest.fixture
def stoppable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A Redis this test alone uses, so it may stop and restart it."""
    with own_redis(tmp_path) as server:
        yield server
