"""deepagg-download: fetch a benchmark into the layout its loader reads (docs/datasets.md).

What comes from where (``benchmarks.registry`` says what to fetch):
- HTTP(S) downloads resume after an interruption: bytes go to ``NAME.part``, continued with a Range
  request, and the file is renamed into place once complete (kept by hand, see ``_fetch_http``).
- FTP downloads (INRIA's Holidays) go through pooch's FTPDownloader and start over when interrupted.
- Every download shows a tqdm progress bar on stderr (bytes; the total when the server says it).
- A recorded sha256 is checked with pooch's ``file_hash``; without one a download is checked
  against the server's announced size, each archive by extracting it, the dataset by its image count.
- Archives are extracted by tarfile with its "data" filter (absolute names made relative, ``..`` and
  device files refused) plus a refusal of every link, and by zipfile, which rewrites member names
  to stay inside the target and writes no links.
- Finished steps leave ``ROOT/.downloads/FILE.done``; a rerun skips them.
"""
from __future__ import annotations

import ftplib
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

import pooch
from tqdm import tqdm

from benchmarks import registry
from benchmarks.errors import DeepaggError
from benchmarks.imagefiles import list_images
from benchmarks.registry import Recipe


class DownloadError(DeepaggError, RuntimeError):
    """A download or extraction that failed; the message says what to do."""


def fetch(url: str, dest: Path, sha256: str | None = None, log: Callable[[str], None] = print,
          progress: bool | None = None, chunk: int = 1 << 20, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part`` (HTTP: resumed where an earlier try
    stopped), renamed into place once the size (and ``sha256``, when given) checks out. An existing
    ``dest`` is taken as done. ``progress``: show a bar on stderr (None: when stderr is a terminal)."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = sys.stderr.isatty() if progress is None else progress
    if url.startswith(("http://", "https://")):
        _fetch_http(url, part, log, show, chunk, timeout)
    elif url.startswith("ftp://"):
        _fetch_ftp(url, part, log, show, chunk, timeout)
    else:
        raise DownloadError(f"cannot download {url}: only http(s):// and ftp:// URLs are supported")
    if sha256 is not None and (digest := pooch.file_hash(str(part), alg="sha256")) != sha256:
        part.unlink()
        raise DownloadError(f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); "
                            "the partial file was removed, run again")
    os.replace(part, dest)
    return dest


def _fetch_http(url: str, part: Path, log, show: bool, chunk: int, timeout: float) -> None:
    # Kept by hand: pooch (and requests) stream into a fresh file, pooch into a temporary one it
    # deletes on failure, so an interrupted multi-GB archive would start over. This resumes it.
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "deepagg-download"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if not (have and resp.status == 206):
                have = 0  # the server sent the whole file
            elif _range_start(resp.headers) != have:
                raise DownloadError(f"{url}: the server resumed at the wrong offset; delete {part} "
                                    "and run again")
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            log(f"{'resuming' if have else 'downloading'} {url}"
                + (f" ({total / 2**20:.1f} MiB)" if total else ""))
            with open(part, "ab" if have else "wb") as f, _bar(part, total, have, show) as bar:
                while block := resp.read(chunk):
                    f.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as e:
        if not (e.code == 416 and have and _range_total(e) == have):  # 416 with the full size: done
            raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
        total = have
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DownloadError(f"cannot download {url} ({getattr(e, 'reason', e)}); "
                            f"{part.stat().st_size if part.exists() else 0} bytes kept in {part}, "
                            "run again to resume") from e
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} stopped at {size} of {total} bytes; run again to resume")


def _fetch_ftp(url: str, part: Path, log, show: bool, chunk: int, timeout: float) -> None:
    log(f"downloading {url} (FTP: an interrupted download starts over)")
    u = urllib.parse.urlsplit(url)
    try:  # pooch reads the host from the URL and takes the port and the login apart
        downloader = pooch.FTPDownloader(port=u.port or 21, username=u.username or "anonymous",
                                         password=u.password or "", progressbar=show, chunk_size=chunk,
                                         timeout=timeout)
        downloader(u._replace(netloc=u.hostname or "").geturl(), str(part), None)
    except (ValueError, *ftplib.all_errors) as e:
        raise DownloadError(f"cannot download {url} ({e}); run again (FTP downloads start over)") from e


def _bar(part: Path, total: int | None, have: int, show: bool) -> tqdm:
    return tqdm(total=total, initial=have, desc=part.name.removesuffix(".part"), unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, disable=not show, leave=True)


def extract(archive: Path, into: Path, flatten: bool = False) -> None:
    """Extract a tar or zip archive into ``into``; refuses tar members that would land outside it
    and links. ``flatten`` puts every file directly in ``into``."""
    if not hasattr(tarfile, "data_filter"):
        raise DownloadError("this Python lacks tarfile's extraction filters (added in 3.10.12, 3.11.4 "
                            "and 3.12): upgrade Python to extract archives safely")
    into.mkdir(parents=True, exist_ok=True)
    target = into / ".extracting" if flatten else into
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(target)  # zipfile drops '..', drive and root parts; links become files
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(target, filter=lambda member, dest: _files_only(archive, member, dest))
    except tarfile.FilterError as e:
        raise DownloadError(f"refusing to extract {archive}: {e}; the archive is not the expected "
                            "one: delete it and run again") from e
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DownloadError(f"cannot extract {archive} ({e}); the file is damaged: delete it and "
                            "run again") from e
    except OSError as e:
        raise DownloadError(f"cannot extract {archive} into {into} ({e})") from e
    if flatten:
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            os.replace(path, into / path.name)
        shutil.rmtree(target)


def _files_only(archive: Path, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    # The "data" filter allows links that stay inside the target; no benchmark archive holds one,
    # and the loaders walk the folders they would point into, so every link is refused.
    if not (member.isfile() or member.isdir()):
        raise DownloadError(f"refusing to extract {archive}: member {member.name!r} is a link or a "
                            "special file")
    return tarfile.data_filter(member, dest)


def download_dataset(name: str, root: Path, keep_archives: bool = False,
                     log: Callable[[str], None] = print, progress: bool | None = None) -> None:
    """Fetch every file of the registry entry ``name`` into ``root``, laid out for its loader."""
    entry = registry.entry(name)
    recipe = entry.recipe
    if recipe is None:
        raise DownloadError(f"{name}: nothing to download; expected layout under {root}:\n{entry.layout}")
    if recipe.manual:
        raise DownloadError(f"{name}: {recipe.manual}. Expected layout under {root}:\n{entry.layout}")
    state = root / ".downloads"
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"cannot create {state} ({e}); choose a --root you can write to") from e
    for remote in recipe.remotes:
        done = state / f"{remote.filename}.done"
        if done.exists():
            continue
        try:
            local = fetch(remote.url, (state if remote.is_archive else root / remote.into) / remote.filename,
                          remote.sha256, log, progress)
        except DownloadError as e:
            raise DownloadError(f"{e}\nIf you are offline, fetch the files elsewhere and lay them out "
                                f"under {root} as:\n{entry.layout}") from e
        if remote.is_archive:
            log(f"extracting {local.name} into {root / remote.into}")
            extract(local, root / remote.into, remote.flatten)
            if not keep_archives:
                local.unlink()
        done.touch()
    _check_count(name, root, recipe, log)


def _check_count(name: str, root: Path, recipe: Recipe, log) -> None:
    if recipe.n_images is None:
        return
    found = len(list_images(root / recipe.images_in))
    log(f"{name}: {found} images in {root / recipe.images_in}"
        + ("" if found == recipe.n_images else f" (expected {recipe.n_images}: check the extraction)"))


def _range_start(headers) -> int | None:
    """The first byte of a 206 answer's 'Content-Range: bytes START-END/N', if any."""
    try:
        return int(headers.get("Content-Range", "").split()[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return None


def _range_total(error: urllib.error.HTTPError) -> int | None:
    """The full size from a 416 answer's 'Content-Range: bytes */N', if any."""
    value = error.headers.get("Content-Range", "") if error.headers else ""
    try:
        return int(value.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        return None

