"""Dataset discovery: --data / DEEPCLF_DATA, the Keras cache, a checksum-verified download, clear failures.

The download tests use a real HTTP server on loopback serving a real .tgz (no internet here).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from deepclf.data import discover
from deepclf.data.discover import download_flowers, resolve_dataset
from deepclf.errors import DatasetError
from tests.conftest import make_image_folder


@pytest.fixture()
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("DEEPCLF_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return tmp_path


def test_explicit_path_wins(no_env, tiny_folder, monkeypatch) -> None:
    assert resolve_dataset(tiny_folder) == tiny_folder
    monkeypatch.setenv("DEEPCLF_DATA", str(tiny_folder))
    assert resolve_dataset(None) == tiny_folder


def test_explicit_missing_or_empty_path_says_how_to_fix(no_env, tmp_path, monkeypatch) -> None:
    with pytest.raises(DatasetError, match=r"--data points at .*does not exist.*DEEPCLF_DATA"):
        resolve_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("DEEPCLF_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match=r"DEEPCLF_DATA points at .*no class sub-folders"):
        resolve_dataset(None)


def test_keras_cache_is_used(no_env) -> None:
    cached = no_env / "keras_home" / "datasets" / "flower_photos_extracted" / "flower_photos"
    make_image_folder(cached, classes=("daisy", "roses"), per_class=2)
    assert resolve_dataset(None, download=False) == cached


def test_nothing_found_without_download(no_env) -> None:
    with pytest.raises(DatasetError, match=r"no flowers dataset found.*--data PATH"):
        resolve_dataset(None, download=False)


def _serve(payload: bytes):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _archive(tmp_path: Path) -> bytes:
    src = make_image_folder(tmp_path / "src" / "flower_photos", classes=("daisy", "tulips"), per_class=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src, arcname="flower_photos")
    return buf.getvalue()


def test_download_verifies_checksum(tmp_path) -> None:
    payload = _archive(tmp_path)
    srv = _serve(payload)
    url = f"http://127.0.0.1:{srv.server_address[1]}/flower_photos.tgz"
    try:
        with pytest.raises(DatasetError, match=r"SHA-256 .* expected 0000"):
            download_flowers(tmp_path / "cache", url=url, sha256="0" * 64)
        assert not (tmp_path / "cache" / "flower_photos").exists()  # nothing half-extracted is left
        got = download_flowers(tmp_path / "cache", url=url, sha256=hashlib.sha256(payload).hexdigest())
        assert sorted(p.name for p in got.iterdir()) == ["daisy", "tulips"]
    finally:
        srv.shutdown()


def test_download_failure_is_a_clear_error(no_env, monkeypatch) -> None:
    # A real connection attempt to a closed loopback port (the discard port, nothing listens there).
    monkeypatch.setattr(discover, "FLOWERS_URL", "http://127.0.0.1:9/flower_photos.tgz")
    with pytest.raises(DatasetError, match=r"download failed.*--data PATH"):
        resolve_dataset(None)


def test_official_checksum_is_the_published_one() -> None:
    assert discover.FLOWERS_SHA256 == "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c"
