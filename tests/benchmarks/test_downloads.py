"""Downloads against a loopback HTTP server: resume, atomic rename, safe extraction (no network)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import downloads
from benchmarks.downloads import DownloadError, Recipe, Remote, download_dataset, extract, fetch

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


class _Server:
    """Serves ``files``; honours 'Range: bytes=N-' unless ``ranges`` is off; ``cut`` truncates the
    next full answer after that many bytes (a dropped connection)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.cut: int | None = None
        self.seen_ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                rng = self.headers.get("Range")
                server.seen_ranges.append(rng)
                start = int(rng.split("=")[1].rstrip("-")) if rng and server.ranges else 0
                if start >= len(data) and rng and server.ranges:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.cut is not None:
                    body, server.cut = body[:server.cut], None
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    s.files["/data.bin"] = PAYLOAD
    yield s
    s.close()


def quiet(_msg):
    pass


def test_plain_download_is_renamed_into_place(server, tmp_path):
    dest = fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.cut = 30_000
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(server.url + "/data.bin", dest, log=quiet, timeout=5)
    part = tmp_path / "data.bin.part"
    assert not dest.exists() and part.stat().st_size == 30_000
    fetch(server.url + "/data.bin", dest, log=quiet)
    assert server.seen_ranges[-1] == "bytes=30000-"
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_without_ranges_restarts_from_zero(server, tmp_path):
    server.ranges = False
    (tmp_path / "data.bin.part").write_bytes(b"stale bytes")
    fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_complete_part_is_finished_on_416(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_checksum(server, tmp_path):
    good = hashlib.sha256(PAYLOAD).hexdigest()
    assert fetch(server.url + "/data.bin", tmp_path / "a.bin", sha256=good, log=quiet).exists()
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(server.url + "/data.bin", tmp_path / "b.bin", sha256="0" * 64, log=quiet)
    assert not (tmp_path / "b.bin").exists() and not (tmp_path / "b.bin.part").exists()


def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + "/missing.bin", tmp_path / "m.bin", log=quiet)


def _tar(members: dict[str, bytes], links: dict[str, str] = {}) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return buf.getvalue()


def test_extract_and_flatten(tmp_path):
    (tmp_path / "a.tgz").write_bytes(_tar({"jpg/1.jpg": b"1", "jpg/sub/2.jpg": b"2"}))
    extract(tmp_path / "a.tgz", tmp_path / "out")
    assert (tmp_path / "out" / "jpg" / "sub" / "2.jpg").read_bytes() == b"2"
    extract(tmp_path / "a.tgz", tmp_path / "flat", flatten=True)
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["1.jpg", "2.jpg"]


@pytest.mark.parametrize("members,links", [({"../evil.txt": b"x"}, {}), ({"/abs/evil.txt": b"x"}, {}),
                                           ({}, {"jpg/link": "/etc/passwd"})])
def test_tar_traversal_is_refused(tmp_path, members, links):
    (tmp_path / "bad.tgz").write_bytes(_tar(members, links))
    with pytest.raises(DownloadError, match="refusing to extract"):
        extract(tmp_path / "bad.tgz", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_zip_traversal_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("full/ok.jpg", b"1")
        zf.writestr("../evil.txt", b"x")
    with pytest.raises(DownloadError, match=r"\.\./evil.txt"):
        extract(tmp_path / "bad.zip", tmp_path / "out")


def test_dataset_download_lays_out_and_skips_finished_steps(server, tmp_path, monkeypatch):
    server.files["/images.tgz"] = _tar({"jpg/100000.jpg": b"a", "jpg/100001.jpg": b"b"})
    server.files["/gt.tgz"] = _tar({"gt_dir/x_1_query.txt": b"q"})
    server.files["/gnd.pkl"] = b"pickle"
    recipe = Recipe((Remote(server.url + "/gnd.pkl"), Remote(server.url + "/images.tgz"),
                     Remote(server.url + "/gt.tgz", "gt_files", flatten=True)), "  LAYOUT", "jpg", 2)
    monkeypatch.setitem(downloads.RECIPES, "toy", recipe)
    root = tmp_path / "toy"
    download_dataset("toy", root, log=quiet)
    assert sorted(p.name for p in (root / "jpg").iterdir()) == ["100000.jpg", "100001.jpg"]
    assert (root / "gt_files" / "x_1_query.txt").read_bytes() == b"q"
    assert (root / "gnd.pkl").read_bytes() == b"pickle"
    assert not (root / ".downloads" / "images.tgz").exists()  # archives are removed once extracted
    server.close()  # a rerun needs no network
    download_dataset("toy", root, log=quiet)


def test_offline_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    monkeypatch.setitem(downloads.RECIPES, "toy", Recipe((Remote(f"http://127.0.0.1:{port}/a.tgz"),),
                                                         "  ROOT/jpg/*.jpg   the images"))
    with pytest.raises(DownloadError) as e:
        download_dataset("toy", tmp_path / "toy", log=quiet)
    msg = str(e.value)
    assert "offline" in msg and str(tmp_path / "toy") in msg and "ROOT/jpg/*.jpg" in msg


def test_cli(capsys, tmp_path):
    assert downloads.main(["flickr100k", "--root", str(tmp_path)]) == 1
    assert "RAR" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        downloads.main(["nonsense", "--root", str(tmp_path)])
    assert set(downloads.RECIPES) >= {"holidays", "oxford5k", "paris6k", "roxford5k", "rparis6k", "ukbench",
                                      "revisitop1m", "flickr100k"}
