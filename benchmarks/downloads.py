"""deepagg-download: fetch a benchmark into the layout its loader reads (standard library only).

Downloads resume: bytes go to ``NAME.part`` (continued with an HTTP Range request after an
interruption) and the file is renamed into place only once complete. No checksum is recorded
where none is known for certain; a download is then checked against the server's announced size,
each archive by extracting it, and the dataset by counting its images.
Archives are extracted with path-traversal protection (no absolute paths, no ``..``, no links).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from benchmarks import distractors, holidays, oxford, revisited, ukbench
from benchmarks.imagefiles import list_images

_OXFORD = "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/"
_PARIS = "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/"
_REVISITOP = "http://cmp.felk.cvut.cz/revisitop/data/datasets/"
_R1M = "http://ptak.felk.cvut.cz/revisitop/revisitop1m/"


class DownloadError(RuntimeError):
    """A download or extraction that failed; the message says what to do."""


@dataclass(frozen=True)
class Remote:
    """One file to fetch. Archives (.tgz, .tar.gz, .tar, .zip) are extracted into ``into`` (a folder
    under the dataset root; ``flatten`` drops the archive's folders); other files are saved there."""

    url: str
    into: str = ""
    flatten: bool = False
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url.split("?", 1)[0]).name

    @property
    def is_archive(self) -> bool:
        return self.filename.endswith((".tgz", ".tar.gz", ".tar", ".zip"))


@dataclass(frozen=True)
class Recipe:
    """A dataset's files, its on-disk layout, and the image count expected under ``images_in``."""

    remotes: tuple[Remote, ...]
    layout: str
    images_in: str = ""
    n_images: int | None = None
    manual: str | None = None  # instructions, for datasets with no automatic download


_BUILDINGS_OX = (Remote(_OXFORD + "oxbuild_images-v1.tgz", "jpg"),)
_BUILDINGS_PA = (Remote(_PARIS + "paris_1-v1.tgz", "jpg"), Remote(_PARIS + "paris_2-v1.tgz", "jpg"))

RECIPES: dict[str, Recipe] = {
    "holidays": Recipe(
        (Remote("ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg1.tar.gz"),
         Remote("ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg2.tar.gz")),
        holidays.LAYOUT, "jpg", 1491),
    "oxford5k": Recipe(_BUILDINGS_OX + (Remote(_OXFORD + "gt_files_170407.tgz", "gt_files", flatten=True),),
                       oxford.LAYOUT, "jpg", 5063),
    "paris6k": Recipe(_BUILDINGS_PA + (Remote(_PARIS + "paris_120310.tgz", "gt_files", flatten=True),),
                      oxford.LAYOUT, "jpg", 6412),
    "roxford5k": Recipe(_BUILDINGS_OX + (Remote(_REVISITOP + "roxford5k/gnd_roxford5k.pkl"),),
                        revisited.LAYOUT, "jpg", 5063),
    "rparis6k": Recipe(_BUILDINGS_PA + (Remote(_REVISITOP + "rparis6k/gnd_rparis6k.pkl"),),
                       revisited.LAYOUT, "jpg", 6412),
    "ukbench": Recipe((Remote("https://archive.org/download/ukbench/ukbench.zip"),),
                      ukbench.LAYOUT, "full", 10200),
    "revisitop1m": Recipe(
        tuple(Remote(f"{_R1M}jpg/revisitop1m.{i}.tar.gz", "jpg") for i in range(1, 101))
        + (Remote(_R1M + "revisitop1m.txt"),),
        "  ROOT/jpg/...                the 1M distractor images (100 archives)\n"
        "  ROOT/revisitop1m.txt        their list (use it as distractors_list)"),
    "flickr100k": Recipe((), distractors.LAYOUT, manual=(
        "the Flickr 100k distractors are distributed as 40 RAR parts "
        f"({_OXFORD}ox100k/oxc1_100k.part01.rar ... part40.rar), which the Python standard library "
        "cannot extract: download them, extract part01 with unrar or 7-Zip into ROOT, and set "
        "dataset.distractors_root to ROOT")),
}


def fetch(url: str, dest: Path, sha256: str | None = None, log: Callable[[str], None] = print,
          chunk: int = 1 << 20, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming it where an earlier try stopped
    (HTTP Range; other schemes start over), renamed into place once the size (and ``sha256``,
    when given) checks out. An existing ``dest`` is taken as done."""
    dest = Path(dest)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    resumable = url.startswith(("http://", "https://"))
    request = urllib.request.Request(url, headers={"User-Agent": "deepagg-download"})
    if have and resumable:
        request.add_header("Range", f"bytes={have}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            if not (have and resumable and getattr(resp, "status", 200) == 206):
                have = 0  # the server sent the whole file
            elif _range_start(resp.headers) != have:
                raise DownloadError(f"{url}: the server resumed at the wrong offset; delete {part} "
                                    "and run again")
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            log(f"{'resuming' if have else 'downloading'} {url}"
                + (f" ({total / 2**20:.1f} MiB)" if total else ""))
            with open(part, "ab" if have else "wb") as f:
                while block := resp.read(chunk):
                    f.write(block)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and _range_total(e) == have:
            total = have  # the part was already complete
        else:
            raise DownloadError(f"cannot download {url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        raise DownloadError(f"cannot download {url} ({getattr(e, 'reason', e)}); "
                            f"{part.stat().st_size if part.exists() else 0} bytes kept in {part}, "
                            "run again to resume") from e
    size = part.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"download of {url} stopped at {size} of {total} bytes; run again to resume")
    if sha256 is not None and (digest := _sha256(part)) != sha256:
        part.unlink()
        raise DownloadError(f"{url}: checksum mismatch (sha256 {digest}, expected {sha256}); "
                            "the partial file was removed, run again")
    os.replace(part, dest)
    return dest


def extract(archive: Path, into: Path, flatten: bool = False) -> None:
    """Extract a tar or zip archive into ``into``; refuses members that would land outside it
    (absolute paths, ``..``) and links. ``flatten`` puts every file directly in ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / ".extracting" if flatten else into
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(archive, info.filename)
                    zf.extract(info, target)
        else:
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                for m in members:
                    _check_member(archive, m.name)
                    if not (m.isfile() or m.isdir()):
                        raise DownloadError(f"refusing to extract {archive}: member {m.name!r} is a "
                                            "link or a special file")
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tf.extractall(target, members=members, **kwargs)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise DownloadError(f"cannot extract {archive} ({e}); the file is damaged: delete it and "
                            "run again") from e
    if flatten:
        for path in sorted(p for p in target.rglob("*") if p.is_file()):
            os.replace(path, into / path.name)
        shutil.rmtree(target)


def download_dataset(name: str, root: Path, keep_archives: bool = False,
                     log: Callable[[str], None] = print) -> None:
    """Fetch every file of dataset ``name`` into ``root`` and lay it out for its loader."""
    recipe = RECIPES[name]
    if recipe.manual:
        raise DownloadError(f"{name}: {recipe.manual}. Expected layout under {root}:\n{recipe.layout}")
    state = root / ".downloads"
    state.mkdir(parents=True, exist_ok=True)
    for remote in recipe.remotes:
        done = state / f"{remote.filename}.done"
        if done.exists():
            continue
        try:
            local = fetch(remote.url, (state if remote.is_archive else root / remote.into) / remote.filename,
                          remote.sha256, log)
        except DownloadError as e:
            raise DownloadError(f"{e}\nIf you are offline, fetch the files elsewhere and lay them out "
                                f"under {root} as:\n{recipe.layout}") from e
        if remote.is_archive:
            log(f"extracting {local.name} into {root / remote.into}")
            extract(local, root / remote.into, remote.flatten)
            if not keep_archives:
                local.unlink()
        done.touch()
    if recipe.n_images is not None:
        found = len(list_images(root / recipe.images_in))
        log(f"{name}: {found} images in {root / recipe.images_in}"
            + ("" if found == recipe.n_images else f" (expected {recipe.n_images}: check the extraction)"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepagg-download", description="Download a benchmark into the layout deepagg reads "
        "(docs/datasets.md). Interrupted downloads resume when run again.")
    parser.add_argument("dataset", choices=sorted(RECIPES))
    parser.add_argument("--root", required=True, type=Path,
                        help="the dataset's folder, as in its config (e.g. data/oxford5k)")
    parser.add_argument("--keep-archives", action="store_true", help="keep archives after extraction")
    args = parser.parse_args(argv)
    try:
        download_dataset(args.dataset, args.root, args.keep_archives,
                         log=lambda m: print(m, file=sys.stderr, flush=True))
    except DownloadError as e:
        print(f"deepagg-download: {e}", file=sys.stderr)
        return 1
    return 0


def _check_member(archive: Path, name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DownloadError(f"refusing to extract {archive}: member {name!r} would land outside the "
                            "target folder")


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
