"""The embedded default dataset: real photos that ship inside installed packages, each turned into
several views by known random homographies and photometric changes.

Sources: scikit-image's ``skimage.data`` photos (CC0), scikit-learn's sample images (china, flower)
and matplotlib's sample photo (grace_hopper). The ``test`` split and the ``holdout`` split (for
fitting PCA-whitening and codebooks) use disjoint source photos.

Every view is rendered at ``view_size`` from a source photo through a homography H (3 x 3) that
maps *source-photo pixels* to *view pixels*; ``meta["homographies"]`` keeps them, so the pixel
correspondence between views a and b of one group is ``H_b @ inv(H_a)`` (view-a pixels to view-b
pixels), in OpenCV's pixel convention. LocalFeatures positions are continuous and normalised
(a grid cell's centre is (j + 0.5) / w), so pixel = position * (view width, view height) - 0.5
(analysis/similarity.py converts in one place).

Protocol: every view is a query (as in UKBench); its positives are the other views of its source
photo and the query itself is junk (removed from its own ranking, as in Holidays).
"""
from __future__ import annotations

from functools import lru_cache, partial

import cv2
import numpy as np
from PIL import Image

from benchmarks.base import ImageRef, Query, RetrievalDataset

TEST_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower", "grace_hopper",
               "camera", "brick", "grass")
# textured enough for SIFT in every view (smooth photos such as skimage's clock or cell give views
# without a single SIFT keypoint)
HOLDOUT_PHOTOS = ("hubble_deep_field", "coins", "moon", "gravel", "immunohistochemistry", "horse",
                  "logo", "text", "page")


@lru_cache(maxsize=None)
def source_photo(name: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a bundled photo."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image
        img = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            img = np.asarray(Image.open(f).convert("RGB"))
    else:
        import skimage.data
        if not hasattr(skimage.data, name):
            raise ValueError(f"demo photo {name!r} is not in skimage.data of this scikit-image")
        img = getattr(skimage.data, name)()
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if img.dtype != np.uint8:
        img = (255 * (img.astype(np.float64) / max(img.max(), 1))).astype(np.uint8)
    return np.ascontiguousarray(img)


def random_view_homography(rng: np.random.Generator, src_wh: tuple[int, int],
                           view_wh: tuple[int, int], difficulty: float) -> np.ndarray:
    """H mapping source pixels to view pixels: a random rotated, perspective-jittered crop.

    The crop keeps the view's aspect ratio, covers 30-90 % of the source's shorter side (scaled by
    ``difficulty``), is rotated by up to 35 degrees * difficulty, and its corners move by up to 10 %
    of its size.
    """
    sw, sh = src_wh
    vw, vh = view_wh
    aspect = vw / vh
    frac = rng.uniform(0.9 - 0.6 * difficulty, 0.95)
    ch = frac * min(sh, sw / aspect)
    cw = ch * aspect
    angle = np.deg2rad(rng.uniform(-35, 35) * difficulty)
    cx = rng.uniform(0.5 * cw, sw - 0.5 * cw) if sw > cw else sw / 2
    cy = rng.uniform(0.5 * ch, sh - 0.5 * ch) if sh > ch else sh / 2
    corners = np.array([[-cw / 2, -ch / 2], [cw / 2, -ch / 2], [cw / 2, ch / 2], [-cw / 2, ch / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = corners @ rot.T + [cx, cy]
    quad += rng.uniform(-0.1, 0.1, size=(4, 2)) * [cw, ch] * difficulty
    target = np.array([[0, 0], [vw, 0], [vw, vh], [0, vh]], dtype=np.float32)
    return cv2.getPerspectiveTransform(quad.astype(np.float32), target).astype(np.float64)


def photometric_params(rng: np.random.Generator, difficulty: float) -> dict:
    """Brightness, contrast, gamma, saturation, blur and noise of one view."""
    d = difficulty
    return {"gain": rng.uniform(1 - 0.35 * d, 1 + 0.35 * d), "bias": rng.uniform(-30, 30) * d,
            "gamma": float(np.exp(rng.uniform(-0.4, 0.4) * d)),
            "saturation": rng.uniform(1 - 0.7 * d, 1 + 0.3 * d),
            "blur": float(rng.uniform(0, 1.8 * d)), "noise": float(rng.uniform(0, 10 * d)),
            "noise_seed": int(rng.integers(2 ** 31))}


def render_view(photo: str, homography: np.ndarray, view_wh: tuple[int, int], photometric: dict) -> Image.Image:
    """Warp a source photo through ``homography`` and apply the photometric changes."""
    src = source_photo(photo)
    img = cv2.warpPerspective(src, homography, view_wh, flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(127, 127, 127))
    x = img.astype(np.float32)
    gray = x.mean(axis=2, keepdims=True)
    x = gray + photometric["saturation"] * (x - gray)
    x = 255.0 * (np.clip(x, 0, 255) / 255.0) ** photometric["gamma"]
    x = photometric["gain"] * x + photometric["bias"]
    if photometric["blur"] > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), photometric["blur"])
    if photometric["noise"] > 0:
        x = x + np.random.default_rng(photometric["noise_seed"]).normal(0, photometric["noise"], x.shape)
    return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def render_distractor(seed: int, view_wh: tuple[int, int]) -> Image.Image:
    """A synthetic distractor: smooth random colour texture (low-pass filtered noise)."""
    rng = np.random.default_rng(seed)
    w, h = view_wh
    small = rng.random((max(2, h // 16), max(2, w // 16), 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


def demo_dataset(name: str = "demo", split: str = "test", views_per_photo: int = 8,
                 view_width: int = 384, view_height: int = 288, difficulty: float = 1.0,
                 seed: int = 0, distractors: int = 0, fit_on: str | None = None) -> RetrievalDataset:
    """The demo benchmark (``split`` = test | holdout); see the module docstring.

    ``distractors`` appends that many synthetic distractor images (smooth random textures, in no
    group) to the database: a scale test of extraction, storage and search (perf/distractor_memory.py).
    """
    photos = {"test": TEST_PHOTOS, "holdout": HOLDOUT_PHOTOS}.get(split)
    if photos is None:
        raise ValueError(f"dataset.split={split!r}: the demo dataset has splits 'test' and 'holdout'")
    if views_per_photo < 2:
        raise ValueError(f"dataset.views_per_photo={views_per_photo}: need at least 2 views per photo")
    view_wh = (int(view_width), int(view_height))
    images, groups, homs, src_sizes = [], [], [], []
    for g, photo in enumerate(photos):
        sh, sw = source_photo(photo).shape[:2]
        for v in range(views_per_photo):
            rng = np.random.default_rng([seed, {"test": 0, "holdout": 1}[split], g, v])
            H = random_view_homography(rng, (sw, sh), view_wh, difficulty)
            pm = photometric_params(rng, difficulty)
            signature = f"H={np.round(H, 6).tolist()} wh={view_wh} pm={pm}"
            images.append(ImageRef(name=f"{split}_{photo}_{v:02d}", signature=signature,
                                   render=partial(render_view, photo, H, view_wh, pm)))
            groups.append(g)
            homs.append(H)
            src_sizes.append((sw, sh))
    for k in range(distractors):
        images.append(ImageRef(name=f"distractor_{k:07d}", signature=f"seed={seed} wh={view_wh}",
                               render=partial(render_distractor, seed * 10_000_019 + k, view_wh)))
        groups.append(-1)
        homs.append(np.full((3, 3), np.nan))
        src_sizes.append((0, 0))
    groups = np.asarray(groups)
    queries = []
    for i, img in enumerate(images[:len(images) - distractors]):
        members = np.flatnonzero(groups == groups[i])
        queries.append(Query(image=img, db_index=i,
                             relevant={"ok": members[members != i], "junk": np.array([i])}))
    meta = {"groups": groups, "homographies": np.stack(homs), "source_sizes": np.asarray(src_sizes),
            "view_size": view_wh, "photos": list(photos), "split": split}
    return RetrievalDataset(name=name, images=images, queries=queries, protocol="holidays", meta=meta,
                            fit_on=fit_on)
