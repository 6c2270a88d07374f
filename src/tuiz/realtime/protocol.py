"""Payloads of the Socket.IO protocol the TUIZ client speaks, validated with pydantic.

Each client event has one model; anything that does not fit is refused with
`ws:error {error: "VALIDATION_ERROR", message}` before it reaches state or storage.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from tuiz.errors import ErrorCode, TuizError

_DEVICE_ID_CHARS = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def check_device_id(value: str) -> str:
    """The same rule as SQL `is_valid_device_id`: 1-255 of A-Z a-z 0-9 _ . : -, one alnum.

    Real clients send UUIDs, `device_<ms>_<base36>` or `temp-<ms>-<base36>`.
    """
    if len(value) > 255 or not _DEVICE_ID_CHARS.fullmatch(value) or not _ALNUM.search(value):
        raise ValueError("must be 1-255 characters of A-Z a-z 0-9 _ . : - (no spaces)")
    return value


DeviceId = Annotated[str, AfterValidator(check_device_id)]
RoomId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
JoinKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
"""A client-chosen secret naming one join attempt: its retry after a lost reply gets the seat."""

MAX_METADATA_BYTES = 4096
MAX_MESSAGE_BYTES = 16_384


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class WsConnect(Payload):
    device_id: DeviceId = Field(alias="deviceId")
    user_id: str | None = Field(default=None, alias="userId", max_length=255)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RoomJoin(Payload):
    """`roomId`; older TUIZ clients sent `gameId`, accepted as the same thing."""

    room_id: RoomId = Field(validation_alias=AliasChoices("roomId", "gameId"))


class RoomLeave(Payload):
    room_id: RoomId = Field(alias="roomId")


class RoomMessage(Payload):
    room_id: RoomId = Field(alias="roomId")
    message: Any


P = TypeVar("P", bound=Payload)


def parse(model: type[P], data: Any) -> P:
    """Validate one event payload; a typed VALIDATION_ERROR names the first bad field."""
    if not isinstance(data, dict):
        raise TuizError(ErrorCode.VALIDATION_ERROR, "payload must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
        raise TuizError(
            ErrorCode.VALIDATION_ERROR, f"{where}: {first.get('msg', 'invalid')}"
        ) from None
