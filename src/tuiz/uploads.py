"""Uploaded images on local disk: quiz thumbnails, question and answer images, avatars.

Files live under `TUIZ_DATA_DIR/uploads/<scope>/<owner id>/<name>`, where scope is
`quizzes` (owner = the quiz) or `avatars` (owner = the user), and `<name>` is chosen by the
server (random, with the extension of the type found in the bytes). Only PNG, JPEG, WebP
and GIF are kept, recognised by their signature, never by the name or the Content-Type the
browser sent; SVG (which can carry script) is not an image here. Removing a quiz or an avatar
removes its folder.
"""

from __future__ import annotations

import re
import secrets
import shutil
import uuid
from pathlib import Path
from typing import Literal

from tuiz.errors import ErrorCode, TuizError

Scope = Literal["quizzes", "avatars"]

MEDIA_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
NAME = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(png|jpg|webp|gif)$")


def image_type(data: bytes) -> str | None:
    """The extension for an image's bytes (png, jpg, webp, gif), or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def root(data_dir: Path) -> Path:
    return data_dir / "uploads"


def folder(data_dir: Path, scope: Scope, owner: uuid.UUID) -> Path:
    return root(data_dir) / scope / str(owner)


def save_image(data_dir: Path, scope: Scope, owner: uuid.UUID, data: bytes) -> str:
    """Write an image under a new server-chosen name; its path relative to the uploads root.

    VALIDATION_ERROR when the bytes are not a PNG, JPEG, WebP or GIF image.
    """
    kind = image_type(data)
    if kind is None:
        raise TuizError(
            ErrorCode.VALIDATION_ERROR,
            "file: not a PNG, JPEG, WebP or GIF image",
            errors=[{"loc": ["body", "file"], "msg": "unsupported image type"}],
        )
    target = folder(data_dir, scope, owner)
    target.mkdir(parents=True, exist_ok=True)
    name = f"{secrets.token_urlsafe(18)}.{kind}"
    tmp = target / f".{name}.part"
    tmp.write_bytes(data)
    tmp.replace(target / name)
    return f"{scope}/{owner}/{name}"


def locate(data_dir: Path, scope: str, owner: str, name: str) -> Path | None:
    """The file for a public upload path, or None (never a path outside the uploads root)."""
    if scope not in ("quizzes", "avatars") or not NAME.match(name):
        return None
    try:
        owner_id = uuid.UUID(owner)
    except ValueError:
        return None
    path = folder(data_dir, scope, owner_id) / name  # type: ignore[arg-type]
    return path if path.is_file() else None


def remove_all(data_dir: Path, scope: Scope, owner: uuid.UUID) -> None:
    """Delete every file of a quiz or of a user's avatar."""
    shutil.rmtree(folder(data_dir, scope, owner), ignore_errors=True)


def copy_all(data_dir: Path, source: uuid.UUID, target: uuid.UUID) -> bool:
    """Copy a quiz's files to another quiz (a clone keeps its images); True when any."""
    src = folder(data_dir, "quizzes", source)
    if not src.is_dir():
        return False
    shutil.copytree(src, folder(data_dir, "quizzes", target), dirs_exist_ok=True)
    return True
