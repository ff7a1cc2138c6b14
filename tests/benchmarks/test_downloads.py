"""Downloads against loopback HTTP and FTP servers: resume, atomic rename, progress bars, safe
extraction, the CLI's exit codes (no network)."""
from __future__ import annotations

import hashlib
import io
import socket
import socketserver
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks import downloads, registry
from benchmarks.downloads import DownloadError, download_dataset, extract, fetch
from benchmarks.errors import DeepaggError
from benchmarks.registry import DatasetEntry, Recipe, Remote
from experiments.download_app import main as download_main

PAYLOAD = bytes(range(256)) * 400  # 100 KiB: tqdm shows it as "100k" (binary units)


class _HTTPServer:
    """Serves ``files``; honours 'Range: bytes=N-' unless ``ranges`` is off; ``cut`` truncates the
    next full answer after that many bytes (a dropped connection); ``skew`` answers a Range
    request from that many bytes later than asked."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.ranges = True
        self.cut: int | None = None
        self.skew = 0
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
                start += server.skew if start else 0
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
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _FTPServer:
    """The part of FTP that a download uses (login, TYPE, SIZE, passive RETR), serving ``files``."""

    def __init__(self, files: dict[str, bytes]):
        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 ready")
                data_socket = None
                for raw in self.rfile:
                    cmd, _, arg = raw.decode().strip().partition(" ")
                    cmd = cmd.upper()
                    if cmd == "USER":
                        self.reply("331 password please")
                    elif cmd in ("PASS", "TYPE"):
                        self.reply("230 in" if cmd == "PASS" else "200 binary")
                    elif cmd == "SIZE":
                        self.reply(f"213 {len(files[arg])}" if arg in files else "550 no such file")
                    elif cmd == "PASV":
                        data_socket = socket.create_server(("127.0.0.1", 0))
                        port = data_socket.getsockname()[1]
                        self.reply(f"227 passive (127,0,0,1,{port // 256},{port % 256})")
                    elif cmd == "RETR":
                        if arg not in files:
                            self.reply("550 no such file")
                            continue
                        self.reply("150 sending")
                        conn, _ = data_socket.accept()
                        with conn:
                            conn.sendall(files[arg])
                        data_socket.close()
                        self.reply("226 done")
                    elif cmd == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"ftp://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    s = _HTTPServer()
    s.files["/data.bin"] = PAYLOAD
    yield s
    s.close()


def quiet(_msg):
    pass


def test_plain_download_is_renamed_into_place(server, tmp_path):
    dest = fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()
    assert server.seen_ranges == [None]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.cut = 30_000
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="stopped at 30000 of 102400 bytes; run again to resume"):
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
    assert server.seen_ranges == ["bytes=11-"]  # asked, ignored, answered 200 with the whole file
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_resume_at_the_wrong_offset_is_refused(server, tmp_path):
    server.skew = 10
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:500])
    with pytest.raises(DownloadError, match="wrong offset"):
        fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert (tmp_path / "data.bin.part").read_bytes() == PAYLOAD[:500]  # nothing appended


def test_complete_part_is_finished_on_416(server, tmp_path):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_checksum(server, tmp_path):
    good = hashlib.sha256(PAYLOAD).hexdigest()
    assert fetch(server.url + "/data.bin", tmp_path / "a.bin", sha256=good, log=quiet).exists()
    with pytest.raises(DownloadError, match=f"checksum mismatch \\(sha256 {good}, expected 0000"):
        fetch(server.url + "/data.bin", tmp_path / "b.bin", sha256="0" * 64, log=quiet)
    assert not (tmp_path / "b.bin").exists() and not (tmp_path / "b.bin.part").exists()


def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(server.url + "/missing.bin", tmp_path / "m.bin", log=quiet)


def test_progress_bar_counts_bytes_on_stderr(server, tmp_path, capsys):
    fetch(server.url + "/data.bin", tmp_path / "shown.bin", log=quiet, progress=True)
    err = capsys.readouterr().err
    assert "shown.bin: 100%" in err and "100k/100k" in err  # 102,400 B / 1024
    fetch(server.url + "/data.bin", tmp_path / "hidden.bin", log=quiet, progress=False)
    assert capsys.readouterr().err == ""


def test_resumed_progress_bar_starts_at_the_bytes_kept(server, tmp_path, capsys):
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:51_200])
    fetch(server.url + "/data.bin", tmp_path / "data.bin", log=quiet, progress=True)
    err = capsys.readouterr().err
    assert "50.0k/100k" in err and "100k/100k" in err
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD


def test_ftp_download_with_progress(tmp_path, capsys):
    ftp = _FTPServer({"/pub/data.bin": PAYLOAD})
    try:
        dest = fetch(ftp.url + "/pub/data.bin", tmp_path / "data.bin", log=quiet, progress=True, timeout=5)
        assert dest.read_bytes() == PAYLOAD and not (tmp_path / "data.bin.part").exists()
        err = capsys.readouterr().err
        assert "100%" in err and "102k/102k" in err  # pooch's bar: 102,400 B / 1000
        with pytest.raises(DownloadError, match="missing.bin.*550"):
            fetch(ftp.url + "/pub/missing.bin", tmp_path / "missing.bin", log=quiet, timeout=5)
    finally:
        ftp.close()


def test_unsupported_scheme(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        fetch("file:///etc/hostname", tmp_path / "x", log=quiet)


# ----------------------------------------------------------------------------- extraction
def _tar(members: dict[str, bytes], links: dict[str, str] = {}, hard: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = (tarfile.LNKTYPE if hard else tarfile.SYMTYPE), target
            tf.addfile(info)
    return buf.getvalue()


def _files(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def test_extract_and_flatten(tmp_path):
    (tmp_path / "a.tgz").write_bytes(_tar({"jpg/1.jpg": b"1", "jpg/sub/2.jpg": b"2"}))
    extract(tmp_path / "a.tgz", tmp_path / "out")
    assert _files(tmp_path / "out") == ["jpg/1.jpg", "jpg/sub/2.jpg"]
    assert (tmp_path / "out" / "jpg" / "sub" / "2.jpg").read_bytes() == b"2"
    extract(tmp_path / "a.tgz", tmp_path / "flat", flatten=True)
    assert _files(tmp_path / "flat") == ["1.jpg", "2.jpg"]


@pytest.mark.parametrize("members,links,hard,match", [
    ({"ok.jpg": b"1", "../evil.txt": b"x"}, {}, False, "outside the destination"),
    ({"ok.jpg": b"1"}, {"jpg/link": "/etc/passwd"}, False, "'jpg/link' is a link"),
    ({"ok.jpg": b"1"}, {"jpg/inside": "ok.jpg"}, False, "'jpg/inside' is a link"),
    ({"ok.jpg": b"1"}, {"jpg/hard": "ok.jpg"}, True, "'jpg/hard' is a link"),
])
def test_tar_traversal_and_links_are_refused(tmp_path, members, links, hard, match):
    (tmp_path / "bad.tgz").write_bytes(_tar(members, links, hard))
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match=f"refusing to extract .*bad.tgz.*{match}"):
        extract(tmp_path / "bad.tgz", tmp_path / "out")
    assert _files(tmp_path) == ["bad.tgz", "out/ok.jpg"]  # nothing outside, no link made


def test_tar_absolute_member_lands_inside(tmp_path):
    (tmp_path / "abs.tgz").write_bytes(_tar({"/abs/evil.txt": b"x"}))
    extract(tmp_path / "abs.tgz", tmp_path / "out")  # tarfile's data filter strips the leading '/'
    assert _files(tmp_path) == ["abs.tgz", "out/abs/evil.txt"]


def test_zip_extracts_and_keeps_members_inside(tmp_path):
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("full/ukbench00000.jpg", b"1")
        zf.writestr("../evil.txt", b"x")
        zf.writestr("/abs.txt", b"y")
    extract(tmp_path / "a.zip", tmp_path / "out")  # zipfile drops '..' and the root
    assert _files(tmp_path) == ["a.zip", "out/abs.txt", "out/evil.txt", "out/full/ukbench00000.jpg"]


def test_damaged_archive(tmp_path):
    (tmp_path / "cut.tgz").write_bytes(_tar({"a.jpg": bytes(range(256)) * 100})[:200])
    with pytest.raises(DownloadError, match="cut.tgz.*damaged: delete it"):
        extract(tmp_path / "cut.tgz", tmp_path / "out")


# ----------------------------------------------------------------------------- datasets and the CLI
def _toy(monkeypatch, remotes, n_images=None, layout="  ROOT/jpg/*.jpg   the images"):
    monkeypatch.setitem(registry.ENTRIES, "toy", DatasetEntry("toy", None, layout,
                                                              recipe=Recipe(remotes, "jpg", n_images)))


def test_dataset_download_lays_out_and_skips_finished_steps(server, tmp_path, monkeypatch):
    server.files["/images.tgz"] = _tar({"jpg/100000.jpg": b"a", "jpg/100001.jpg": b"b"})
    server.files["/gt.tgz"] = _tar({"gt_dir/x_1_query.txt": b"q"})
    server.files["/gnd.pkl"] = b"pickle"
    _toy(monkeypatch, (Remote(server.url + "/gnd.pkl"), Remote(server.url + "/images.tgz"),
                       Remote(server.url + "/gt.tgz", "gt_files", flatten=True)), n_images=3)
    root, said = tmp_path / "toy", []
    download_dataset("toy", root, log=said.append)
    assert _files(root) == [".downloads/gnd.pkl.done", ".downloads/gt.tgz.done", ".downloads/images.tgz.done",
                            "gnd.pkl", "gt_files/x_1_query.txt", "jpg/100000.jpg", "jpg/100001.jpg"]
    assert (root / "gt_files" / "x_1_query.txt").read_bytes() == b"q"
    assert said[-1] == f"toy: 2 images in {root / 'jpg'} (expected 3: check the extraction)"
    server.close()  # a rerun needs no network
    download_dataset("toy", root, log=quiet)


def test_offline_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    _toy(monkeypatch, (Remote(f"http://127.0.0.1:{port}/a.tgz"),))
    with pytest.raises(DownloadError) as e:
        download_dataset("toy", tmp_path / "toy", log=quiet)
    msg = str(e.value)
    assert "offline" in msg and str(tmp_path / "toy") in msg and "ROOT/jpg/*.jpg" in msg
    assert isinstance(e.value, DeepaggError)


def test_cli_exit_codes(server, capsys, tmp_path, monkeypatch):
    assert download_main(["flickr100k", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "RAR" in err and registry.ENTRIES["flickr100k"].layout in err
    with pytest.raises(SystemExit) as e:
        download_main(["nonsense", "--root", str(tmp_path)])
    assert e.value.code == 2
    _toy(monkeypatch, (Remote(server.url + "/missing.tgz"),))
    assert download_main(["toy", "--root", str(tmp_path / "toy")]) == 2
    assert "HTTP 404" in capsys.readouterr().err
    server.files["/images.tgz"] = _tar({"jpg/1.jpg": b"a"})
    _toy(monkeypatch, (Remote(server.url + "/images.tgz"),), n_images=1)
    assert download_main(["toy", "--root", str(tmp_path / "toy")]) == 0
    assert f"toy: 1 images in {tmp_path / 'toy' / 'jpg'}\n" in capsys.readouterr().err
