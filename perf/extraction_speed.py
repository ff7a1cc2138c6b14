"""Extraction throughput: the input pipeline alone, the model alone, both together, and the usual
plain batch-1 loop, side by side in one run.

    python perf/extraction_speed.py [--preset lite0|vgg19|vits14|vitb14|both|vit] [--device cpu|cuda]
                                    [--n 96] [--batch-size 4] [--workers auto|N]
                                    [--precision fp32,bf16] [--decode pil,torchvision]

Images are real JPEG files written first into a temporary folder (bundled photos: 384 x 288 views
for lite0, 1024 x 768 for vgg19 and the ViTs, so that decoding costs what a benchmark's files
cost). ``both`` is lite0 and vgg19; ``vit`` is DINOv2 ViT-S/14 and ViT-B/14 (random weights) at
518 px (37 x 28 patches), patch tokens of the last block after the norm. For each
preset, precision and decoder it prints images/s of

- input:   decode + resize in the DataLoader worker processes, nothing else;
- model:   the forward pass alone on ready tensors already on the device;
- both:    the real extraction (features.input_pipeline.stream_chunks: workers, bucketing, forward);
- loop:    a plain batch-1 loop (decode, resize, forward, one image at a time, no workers);

and the ratios ``both / min(input, model)`` (the goal: >= 0.9) and ``both / loop``.
VGG-19 and the ViTs run with random weights (speed does not depend on them); Lite0 with its
offline weights.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.base import ImageRef  # noqa: E402
from benchmarks.demo import TEST_PHOTOS, source_photo  # noqa: E402
from features import resources  # noqa: E402
from features.deep import DeepExtractor  # noqa: E402
from features.input_pipeline import stream, stream_chunks  # noqa: E402
from features.source import ImageItem  # noqa: E402
from features.vit import TokenExtractor  # noqa: E402

PRESETS = {
    "lite0": dict(kwargs={}, size=(384, 288), label="EfficientNet-Lite0 bn2, 384 px (offline weights)"),
    "vgg19": dict(kwargs=dict(source="torchvision", name="vgg19", layer="features.35", weights=None,
                              resize="square", image_size=586, ceil_mode=True,
                              mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
                  size=(1024, 768), label="VGG-19 conv5_4, 586 x 586 (the paper's preset)"),
    "vits14": dict(kwargs=dict(name="vit_small_patch14_dinov2", image_size=518), size=(1024, 768),
                   label="DINOv2 ViT-S/14 tokens, 518 px (random weights)", tokens=True),
    "vitb14": dict(kwargs=dict(name="vit_base_patch14_dinov2", image_size=518), size=(1024, 768),
                   label="DINOv2 ViT-B/14 tokens, 518 px (random weights)", tokens=True),
}
GROUPS = {"both": ["lite0", "vgg19"], "vit": ["vits14", "vitb14"]}


def build(preset: dict, **settings):
    """The preset's extractor (TokenExtractor for the ViTs, DeepExtractor otherwise)."""
    cls = TokenExtractor if preset.get("tokens") else DeepExtractor
    return cls(**settings, **preset["kwargs"])


@dataclass(frozen=True)
class Chunk:
    index: int
    lo: int
    hi: int


def write_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[ImageItem]:
    """``n`` JPEG files of bundled photos (crops, alternately landscape and portrait when the
    preset keeps the aspect ratio: a real benchmark's mix)."""
    items = []
    for i in range(n):
        photo = source_photo(TEST_PHOTOS[i % len(TEST_PHOTOS)])
        w, h = size if i % 3 else size[::-1]
        img = Image.fromarray(photo).resize((w, h), Image.BILINEAR)
        path = folder / f"img{i:05d}.jpg"
        img.save(path, quality=90)
        items.append(ImageItem(ImageRef(path.stem, path)))
    return items


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def input_alone(items, prepare, workers: int) -> float:
    chunks = [Chunk(c, lo, min(len(items), lo + 64)) for c, lo in enumerate(range(0, len(items), 64))]
    t = time.perf_counter()
    _, it = stream(iter(chunks), items, prepare, workers)
    count = sum(1 for _ in it)
    return rate(count, time.perf_counter() - t)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_alone(ex, shape, batch: int, repeats: int) -> float:
    """The forward pass on a ready tensor, its output brought to the CPU (a CNN's map; a ViT's
    tokens as LocalFeatures, what its forward hands back)."""
    forward = ex.map_batch if hasattr(ex, "map_batch") else ex.features_of
    x = torch.rand((batch, 3, *shape), device=ex.device)
    forward(x)                                               # warm-up (cuDNN autotune, oneDNN)
    sync(ex.device)
    t = time.perf_counter()
    for _ in range(repeats):
        forward(x)
    sync(ex.device)
    return rate(batch * repeats, time.perf_counter() - t)


def both(ex: DeepExtractor, items, batch: int, workers: int) -> float:
    chunks = [Chunk(c, lo, min(len(items), lo + 64)) for c, lo in enumerate(range(0, len(items), 64))]
    t = time.perf_counter()
    for _ in stream_chunks(iter(chunks), items, ex, batch, num_workers=workers):
        pass
    sync(ex.device)
    return rate(len(items), time.perf_counter() - t)


def batch1_loop(ex: DeepExtractor, items) -> float:
    prepare = ex.preparer()
    for item in items[:3]:                                   # warm-up: both orientations
        ex.run([prepare(item)])
    t = time.perf_counter()
    for item in items:
        ex.run([prepare(item)])
    sync(ex.device)
    return rate(len(items), time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=(*PRESETS, *GROUPS), default="both")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=96, help="images per measurement")
    ap.add_argument("--batch-size", type=int, default=None, help="default: deepagg's (1 on the CPU, 32 on CUDA)")
    ap.add_argument("--workers", default="auto")
    ap.add_argument("--precision", default="fp32", help="comma-separated: fp32,bf16,fp16")
    ap.add_argument("--decode", default="pil", help="comma-separated: pil,torchvision")
    args = ap.parse_args()
    threads, auto_workers = resources.apply(None, None)
    workers = auto_workers if args.workers == "auto" else int(args.workers)
    batch = resources.batch_size(args.batch_size, args.device)
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none"
    print(f"# {dt.date.today()} device={args.device} ({gpu}) torch={torch.__version__} "
          f"threads={threads} loader workers={workers} batch={batch} cores={resources.cores_available()}")
    print("| preset | precision | decode | input img/s | model img/s | both img/s | both / min(input, model) "
          "| batch-1 loop img/s | both / loop |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    presets = GROUPS.get(args.preset, [args.preset])
    with tempfile.TemporaryDirectory() as tmp:
        for name in presets:
            p = PRESETS[name]
            folder = Path(tmp) / name
            folder.mkdir()
            n = args.n if name == "lite0" or args.device != "cpu" else max(8, args.n // 8)
            items = write_jpegs(folder, n, p["size"])
            for decode in args.decode.split(","):
                for precision in args.precision.split(","):
                    ex = build(p, device=args.device, precision=precision, decode=decode)
                    prep = ex.preparer()
                    shape = prep(items[1]).shape[:2] if decode == "pil" else (
                        prep(items[1]).size[1], prep(items[1]).size[0])
                    inp = input_alone(items, prep, workers)
                    model = model_alone(ex, shape, batch, repeats=max(1, n // batch))
                    both(ex, items, batch, workers)          # warm-up: oneDNN primitives per shape
                    runs = [both(ex, items, batch, workers) for _ in range(2)]
                    together = statistics.median(runs)
                    loop = batch1_loop(ex, items[:max(6, n // 3)])
                    print(f"| {p['label']} | {precision} | {decode} | {inp:.1f} | {model:.1f} | "
                          f"{together:.1f} | {together / min(inp, model):.2f} | {loop:.1f} | "
                          f"{together / loop:.2f} |", flush=True)


if __name__ == "__main__":
    main()
