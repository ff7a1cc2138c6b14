"""Helpers for the benchmark tests: tiny stand-in images and official layouts written from the real
ground truth in ../shared/data (tests skip when that folder is absent)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = (Path(__file__).resolve().parents[2].parent / "shared" / "data").resolve()
GROUND_TRUTH = SHARED_DATA / "ground_truth"
SAMPLES = SHARED_DATA / "samples"
QUERY_SIDE = 1024  # stand-in query images are this large so that the real boxes fit


def jpeg_bytes(width: int = 8, height: int = 8, value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def write_images(folder: Path, names, data: bytes | None = None, suffix: str = ".jpg") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = data or jpeg_bytes()
    for n in names:
        (folder / f"{n}{suffix}").write_bytes(data)


def load_mat(name: str):
    """The shared .mat ground truth as plain Python: imlist, 0-based qidx, per query ok/junk/bbx."""
    path = GROUND_TRUTH / f"gnd_{name}.mat"
    if not path.is_file():
        pytest.skip(f"real ground truth {path} not found (only in the dev/CI checkout with ../shared/data)")
    import scipy.io

    m = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    imlist = [str(n) for n in m["imlist"]]
    qidx = (np.atleast_1d(m["qidx"]) - 1).tolist()
    gnd = [{"ok": (np.atleast_1d(g.ok) - 1).tolist(), "junk": (np.atleast_1d(g.junk) - 1).tolist(),
            "bbx": np.atleast_1d(getattr(g, "bbx", [])).astype(float).tolist()} for g in m["gnd"]]
    return {"path": path, "imlist": imlist, "qidx": qidx, "gnd": gnd}


def write_buildings(root: Path, mat: dict, landmarks, prefix: str, nested: bool) -> None:
    """Official Oxford/Paris layout from the .mat: images in jpg/ (Paris: paris/<landmark>/), and
    gt_files with the .mat's ok list split between _good.txt (first half) and _ok.txt."""
    small, big = jpeg_bytes(), jpeg_bytes(QUERY_SIDE, QUERY_SIDE)
    queries = {mat["imlist"][q] for q in mat["qidx"]}
    for n in mat["imlist"]:
        folder = root / "jpg" / "paris" / n.split("_")[1] if nested else root / "jpg"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.jpg").write_bytes(big if n in queries else small)
    gt = root / "gt_files"
    gt.mkdir(parents=True)
    for i, (q, g) in enumerate(zip(mat["qidx"], mat["gnd"])):
        stem = f"{landmarks[i // 5]}_{i % 5 + 1}"
        names = [mat["imlist"][j] for j in g["ok"]]
        half = len(names) // 2
        box = " ".join(map(str, g["bbx"]))
        (gt / f"{stem}_query.txt").write_text(f"{prefix}{mat['imlist'][q]} {box}\n")
        (gt / f"{stem}_good.txt").write_text("".join(f"{n}\n" for n in names[:half]))
        (gt / f"{stem}_ok.txt").write_text("".join(f"{n}\n" for n in names[half:]))
        (gt / f"{stem}_junk.txt").write_text("".join(f"{mat['imlist'][j]}\n" for j in g["junk"]))
