"""Static serving of the pages: routes, vendor modules from node_modules, the setup error page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tuiz.web import pages


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    pages.install(app)
    return TestClient(app)


@pytest.mark.parametrize(
    "path", ["/", "/host", "/play", "/admin", "/report", "/editor", "/account"]
)
def test_pages_are_html(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in response.text


def test_assets_and_vendor_modules(client: TestClient) -> None:
    css = client.get("/assets/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    for name in ("socket.io.esm.min.js", "qrcode.mjs"):
        response = client.get(f"/vendor/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript")
        assert "export" in response.text
    assert client.get("/vendor/anything-else.js").status_code == 404
    assert client.get("/assets/../pyproject.toml").status_code == 404


def test_missing_node_modules_gives_a_setup_page(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "NODE_MODULES", tmp_path / "node_modules")
    response = client.get("/play")
    assert response.status_code == 503
    assert "npm ci" in response.text and "socket.io-client" in response.text
    assert client.get("/vendor/qrcode.mjs").status_code == 503
