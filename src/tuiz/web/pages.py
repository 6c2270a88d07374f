"""tuiz's pages (host, player, admin, report, quiz editor, account): static files under
`web/`, browser libraries from npm.

The pages are plain HTML, CSS and ES modules (no build step). Two third-party browser modules
come from `node_modules/` (installed by `npm ci`, which `make run` and `make test` run) and are
served under `/vendor/`; they are never committed. Without `node_modules/` the pages answer a
short error page that says how to install them.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

REPO_ROOT = Path(__file__).resolve().parents[3]
WEB_DIR = REPO_ROOT / "web"
NODE_MODULES = REPO_ROOT / "node_modules"

# URL name under /vendor/ -> file inside node_modules (exact versions pinned in package.json).
VENDOR_FILES: dict[str, str] = {
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
    "socket.io.esm.min.js.map": "socket.io-client/dist/socket.io.esm.min.js.map",
    "qrcode.mjs": "qrcode-generator/dist/qrcode.mjs",
}

PAGES: dict[str, str] = {
    "/": "index.html",
    "/host": "host.html",
    "/play": "play.html",
    "/admin": "admin.html",
    "/report": "report.html",
    "/editor": "editor.html",
    "/account": "account.html",
}

router = APIRouter(include_in_schema=False)

_NO_CACHE = {"Cache-Control": "no-cache"}


def missing_vendor_files() -> list[str]:
    return [path for path in VENDOR_FILES.values() if not (NODE_MODULES / path).is_file()]


def _setup_error(missing: list[str]) -> HTMLResponse:
    items = "".join(f"<li><code>node_modules/{html.escape(m)}</code></li>" for m in missing)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tuiz: setup incomplete</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto;
 padding: 0 1rem; line-height: 1.5">
<h1>The web pages need their browser libraries</h1>
<p>These files are missing:</p><ul>{items}</ul>
<p>Run <code>make run</code> (it runs <code>npm ci</code>), or <code>npm ci</code> in
<code>{html.escape(str(REPO_ROOT))}</code>, then reload this page.</p>
</body></html>"""
    return HTMLResponse(body, status_code=503, headers=_NO_CACHE)


def _page_route(filename: str) -> object:
    async def page() -> Response:
        missing = missing_vendor_files()
        if missing:
            return _setup_error(missing)
        return FileResponse(WEB_DIR / filename, media_type="text/html", headers=_NO_CACHE)

    page.__name__ = f"page_{filename.removesuffix('.html')}"
    return page


for _path, _file in PAGES.items():
    router.add_api_route(_path, _page_route(_file), methods=["GET"])  # type: ignore[arg-type]


@router.get("/vendor/{name}")
async def vendor(name: str) -> Response:
    rel = VENDOR_FILES.get(name)
    if rel is None:
        return Response("not found", status_code=404, media_type="text/plain")
    path = NODE_MODULES / rel
    if not path.is_file():
        return _setup_error([rel])
    media = "application/json" if name.endswith(".map") else "text/javascript"
    return FileResponse(path, media_type=media, headers=_NO_CACHE)


def install(api: FastAPI) -> None:
    """The page routes, /vendor/ and `web/assets/` under /assets/ (CSS, ES modules)."""
    api.include_router(router)
    api.mount("/assets", StaticFiles(directory=WEB_DIR / "assets", check_dir=False), name="assets")
