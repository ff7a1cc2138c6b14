"""Export / evaluation file I/O at scale: wall time and peak memory of writing and reading back
N x D float32 descriptors (default 100,000 x 2048, 819 MB) through benchmarks.descriptor_files,
against plain numpy np.save / np.load of the same matrix.

    python perf/descriptor_io.py [--n 100000] [--dim 2048] [--queries 1000] [--repeats 3]
                                 [--cache warm,cold] [--dir SCRATCH] [--keep]

Phases, each in a fresh child process, the phases taking turns over ``--repeats`` rounds
(median seconds reported):

- write: ``write_descriptors(descriptor_set(dataset, X, Q, meta), path)``, the call
  deepagg-export makes, as a folder (database.npy, queries.npy, descriptors.json) and as HDF5;
  the baseline ``np.save(path, X)`` (the database only); and ``torch.save`` of the .pt layout's
  dict (no deepagg writer: it makes the file the .pt read row reads).
- read: ``read_descriptors(path)`` then ``check_against(d, dataset, path)``, what deepagg-eval
  times as ``read_s`` (shapes, float32, finite rows in blocks of BLOCK rows, every name in its
  place), for each layout; the baseline ``np.load(database.npy)``; and, to split the layout's own
  cost from deepagg's, the raw reads ``h5py f["database"][()]`` and ``torch.load(...)``.

Data: random Gaussian rows, L2-normalised, generated in blocks from fixed seeds (the children
regenerate the same matrix; a read is checked, after its timing, against the regenerated first and
last blocks), synthetic names ``img_0000000`` and ``query_00000``. Memory: the child's peak
resident set during the timed call (Linux VmHWM, reset through /proc/self/clear_refs just before
it), shown as the peak above what the child held before the call ("extra": for a write the
input matrix is already resident, so extra is the writer's own overhead) and as the whole
child's peak; both also as multiples of N x D x 4 bytes. The child's ru_maxrss (os.wait4) is
printed as a cross-check (it also covers the data generation before the call and the check
after it). Writes are timed to the call's return (the data in the page cache) and to the fsync of
the files written after it (on the disk). Reads run with ``--cache`` warm (the file read through
just before the child starts: the library's and the kernel's copy costs) and cold (the file
evicted with POSIX_FADV_DONTNEED: the disk's speed too); the fraction of the file resident when
the child starts is shown (fincore). Prefault (default; ``--no-prefault`` to skip): just before
the timed call the child allocates, touches and frees 1.5 x N x D x 4 bytes, so that the call's
own allocations find pages the guest already holds: on a VM whose free memory is handed back to
the host (this one), a first touch of 819 MB costs 1-2 s at random, more than the whole read, and
would otherwise decide the ratios (the header line measures it). Goals (issue 17): memory bounded by blocks, not by N x D twice;
read throughput within 2x of reading the file with numpy.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_speed import rss_kib  # noqa: E402 -- perf/ is the script's own folder

GEN_BLOCK = 8192           # rows generated at a time (the generator's temporaries stay small)
WRITES = ("write numpy", "write folder", "write hdf5", "write pt")
READS = ("read numpy", "read h5py raw", "read torch raw", "read folder", "read hdf5", "read pt")
FILES = {"numpy": "baseline.npy", "folder": "descriptors", "hdf5": "descriptors.h5",
         "pt": "descriptors.pt"}


def model_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


# ----------------------------------------------------------------------------- data
def block(seed: int, b: int, rows: int, dim: int):
    """Rows of block ``b``: Gaussian, L2-normalised (float32)."""
    import numpy as np
    x = np.random.default_rng([seed, b]).standard_normal((rows, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def matrix(n: int, dim: int, seed: int):
    import numpy as np
    out = np.empty((n, dim), np.float32)
    for b, s in enumerate(range(0, n, GEN_BLOCK)):
        out[s:s + GEN_BLOCK] = block(seed, b, min(GEN_BLOCK, n - s), dim)
    return out


def dataset(n: int, n_q: int):
    """A RetrievalDataset with the synthetic names only (what check_against compares)."""
    import numpy as np

    from benchmarks.base import ImageRef, Query, RetrievalDataset
    images = [ImageRef(f"img_{i:07d}") for i in range(n)]
    queries = [Query(ImageRef(f"query_{j:05d}"), {"ok": np.array([j % n]), "junk": np.zeros(0, int)})
               for j in range(n_q)]
    return RetrievalDataset("synthetic", images, queries)


# ----------------------------------------------------------------------------- child
def child(args) -> None:
    """One phase in this process; prints one JSON line."""
    import numpy as np
    phase, folder = args.child, Path(args.scratch)
    if phase == "touch":       # first touch of a fresh N x D float32 array, then once more
        seconds = []
        for _ in range(2):
            t = time.perf_counter()
            np.ones((args.n, args.dim), np.float32)
            seconds.append(time.perf_counter() - t)
        print(json.dumps({"first": seconds[0], "again": seconds[1]}))
        return
    what = phase.split(" ", 1)[1]
    ds = dataset(args.n, args.queries)
    if phase.startswith("write"):
        X = matrix(args.n, args.dim, args.seed)
        Q = matrix(args.queries, args.dim, args.seed + 1)
        from benchmarks.descriptor_files import descriptor_set, write_descriptors
        if what == "pt":
            import torch
        elif what == "hdf5":
            import h5py  # noqa: F401  (imported before the timing, as an earlier write would have)
        meta = {"exported_by": "perf/descriptor_io.py", "n": args.n}
        path = folder / FILES[what]

        def op():
            if what == "numpy":
                np.save(path, X)
            elif what == "pt":
                from benchmarks.descriptor_files import names_of
                db_names, q_names = names_of(ds)
                torch.save({"database": torch.from_numpy(X), "queries": torch.from_numpy(Q),
                            "database_names": db_names, "query_names": q_names,
                            "dataset": ds.name, "meta": meta}, path)
            else:
                write_descriptors(descriptor_set(ds, X, Q, meta), path)
            return None
    else:
        from benchmarks.descriptor_files import check_against, read_descriptors
        # what the read imports, imported before the timing (deepagg-eval has torch loaded anyway)
        if what in ("hdf5", "h5py raw"):
            import h5py
        if what in ("pt", "torch raw"):
            import torch
        path = read_path(folder, phase)

        def op():
            if what == "numpy":
                return np.load(path)
            if what == "h5py raw":
                with h5py.File(path, "r") as f:
                    return f["database"][()]
            if what == "torch raw":
                return torch.load(path, map_location="cpu", weights_only=True)["database"].numpy()
            d = read_descriptors(path)
            check_against(d, ds, path)
            return d.database
    gc.collect()
    if args.prefault:          # pages the call will allocate, faulted in and freed (module doc)
        np.ones(int(1.5 * args.n * args.dim) + 2**20, np.float32)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                       # VmHWM := VmRSS now
    base = rss_kib("VmRSS")
    t = time.perf_counter()
    out = op()
    seconds = time.perf_counter() - t
    synced = None
    if phase.startswith("write"):
        fsync_all(path)                                    # until the bytes are on the disk
        synced = time.perf_counter() - t
    hwm = rss_kib("VmHWM")
    ok = True
    if out is not None:                                    # after the timing: is it the matrix?
        last = (args.n - 1) // GEN_BLOCK
        ok = (out.shape == (args.n, args.dim) and out.dtype == np.float32
              and np.array_equal(out[:GEN_BLOCK], block(args.seed, 0, min(GEN_BLOCK, args.n), args.dim))
              and np.array_equal(out[last * GEN_BLOCK:],
                                 block(args.seed, last, args.n - last * GEN_BLOCK, args.dim)))
    print(json.dumps({"phase": phase, "seconds": seconds, "synced": synced, "base_mib": base / 1024,
                      "hwm_mib": hwm / 1024, "ok": bool(ok)}))


def files_of(path: Path) -> list[Path]:
    return sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]


def fsync_all(path: Path) -> None:
    for f in files_of(path):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def set_cache(path: Path, mode: str) -> float:
    """Put ``path``'s files in the page cache (warm: read through once) or out of it (cold:
    written back, then POSIX_FADV_DONTNEED); returns the fraction resident afterwards (fincore),
    or NaN where fincore is missing."""
    for f in files_of(path):
        fd = os.open(f, os.O_RDONLY)
        try:
            if mode == "cold":
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                buf = bytearray(16 * 2**20)
                with os.fdopen(os.dup(fd), "rb", buffering=0) as fh:
                    while fh.readinto(buf):
                        pass
        finally:
            os.close(fd)
    return resident(path)


def resident(path: Path) -> float:
    total = cached = 0
    for f in files_of(path):
        try:
            out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE",
                                  str(f)], capture_output=True, text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            return float("nan")
        cached, total = cached + int(out[0]), total + int(out[1])
    return cached / total if total else float("nan")


def read_path(scratch: Path, phase: str) -> Path:
    what = phase.split(" ", 1)[1]
    return scratch / FILES[{"h5py raw": "hdf5", "torch raw": "pt"}.get(what, what)]


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="database rows")
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--queries", type=int, default=1000, help="query rows (written and read too)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every phase (median reported)")
    ap.add_argument("--dir", type=Path, default=None,
                    help="scratch folder for the files (default: a temporary folder, removed); "
                         "the files written there are removed at the end unless --keep")
    ap.add_argument("--keep", action="store_true", help="leave the files in --dir")
    ap.add_argument("--cache", default="warm,cold",
                    help="page-cache states the reads run in: warm (the file read through just "
                         "before), cold (evicted with POSIX_FADV_DONTNEED), or both")
    ap.add_argument("--no-prefault", dest="prefault", action="store_false",
                    help="do not fault in (and free) the call's memory before timing it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--scratch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    import numpy as np
    matrix_mb = args.n * args.dim * 4
    print(f"# {dt.date.today()} {model_name()}, {os.cpu_count()} cores (shared with other work; "
          f"load average {os.getloadavg()[0]:.2f} at the start), numpy {np.__version__}; "
          f"{args.n:,} x {args.dim} float32 database = {matrix_mb / 1e6:,.0f} MB "
          f"({matrix_mb / 2**20:,.0f} MiB), {args.queries} queries; median of {args.repeats}; "
          f"reads with the page cache {args.cache}")
    touches = [run_child_rusage(args, "touch", Path(".")) for _ in range(3)]
    first = ", ".join(f"{t['first']:.3f}" for t in touches)
    again = ", ".join(f"{t['again']:.3f}" for t in touches)
    print(f"# first touch of a fresh N x D float32 array in a new process: {first} s; once more "
          f"after freeing it: {again} s (a VM whose free memory went back "
          f"to the host pays the first); timed calls {'after' if args.prefault else 'without'} "
          "a prefault")
    own = args.dir is None
    scratch = Path(tempfile.mkdtemp(prefix="descriptor_io_")) if own else args.dir
    scratch.mkdir(parents=True, exist_ok=True)
    modes = args.cache.split(",")
    runs: dict[str, list[dict]] = {p: [] for p in (*WRITES, *(f"{r} [{m}]" for m in modes for r in READS))}
    try:
        for _ in range(args.repeats):
            for phase in WRITES:
                remove(scratch / FILES[phase.split(" ", 1)[1]])     # a fresh write, not a replace
                os.sync()
                runs[phase].append(run_child_rusage(args, phase, scratch))
            os.sync()
            for mode in modes:
                for phase in READS:
                    cached = set_cache(read_path(scratch, phase), mode)
                    row = run_child_rusage(args, phase, scratch)
                    row["resident"] = cached
                    runs[f"{phase} [{mode}]"].append(row)
        sizes = {k: du(scratch / v) for k, v in FILES.items()}
    finally:
        if own:
            shutil.rmtree(scratch, ignore_errors=True)
        elif not args.keep:
            for v in FILES.values():
                remove(scratch / v)
    report(args, runs, sizes, matrix_mb)


def run_child_rusage(args, phase: str, scratch: Path) -> dict:
    """The child's JSON line, with its ru_maxrss (MiB) from os.wait4."""
    p = subprocess.Popen([sys.executable, __file__, "--child", phase, "--scratch", str(scratch),
                          "--n", str(args.n), "--dim", str(args.dim), "--queries", str(args.queries),
                          "--seed", str(args.seed), *([] if args.prefault else ["--no-prefault"])],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{phase} failed (exit {p.returncode}):\n{out.decode(errors='replace')[-3000:]}")
    row = json.loads(out.decode().strip().splitlines()[-1])
    row["maxrss_mib"] = usage.ru_maxrss / 1024
    return row


def du(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size if path.exists() else 0


LABELS = {
    "write numpy": "np.save(X) (baseline)",
    "write folder": "write_descriptors, folder (npy + JSON)",
    "write hdf5": "write_descriptors, HDF5",
    "write pt": "torch.save of the .pt dict (not deepagg's)",
    "read numpy": "np.load(X) (baseline)",
    "read h5py raw": "h5py f['database'][()] (raw, reference)",
    "read torch raw": "torch.load(.pt)['database'] (raw, reference)",
    "read folder": "read_descriptors + check_against, folder",
    "read hdf5": "read_descriptors + check_against, HDF5",
    "read pt": "read_descriptors + check_against, .pt",
}


def report(args, runs: dict, sizes: dict, matrix_mb: int) -> None:
    mib = matrix_mb / 2**20

    def med(phase, key="seconds"):
        return statistics.median(r[key] for r in runs[phase])

    def least(phase, key="seconds"):
        return min(r[key] for r in runs[phase])

    def memory(rs) -> str:
        extra = max(r["hwm_mib"] - r["base_mib"] for r in rs)
        top = max(r["hwm_mib"] for r in rs)
        return (f"{min(r['base_mib'] for r in rs):,.0f} | {extra:,.0f} | {extra / mib:.2f} | "
                f"{top:,.0f} | {top / mib:.2f} | {max(r['maxrss_mib'] for r in rs):,.0f} | "
                f"{'ok' if all(r['ok'] for r in rs) else 'MISMATCH'}")

    print("\nfiles: " + ", ".join(f"{k} {v / 1e6:,.0f} MB" for k, v in sizes.items()))
    print(f"N x D x 4 = {mib:,.0f} MiB; the 'x' columns are multiples of it; 'vs numpy' = seconds / "
          "the numpy baseline's (median / median, and min / min)\n")
    print("| write | call s (median) | vs numpy | min vs min | call + fsync s (median) | vs numpy | "
          "min vs min | RSS before MiB | peak extra MiB | extra x | peak RSS MiB | RSS x | "
          "ru_maxrss MiB | check |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    ref = "write numpy"
    for phase in WRITES:
        print(f"| {LABELS[phase]} | {med(phase):.3f} | {med(phase) / med(ref):.2f}x | "
              f"{least(phase) / least(ref):.2f}x | {med(phase, 'synced'):.3f} | "
              f"{med(phase, 'synced') / med(ref, 'synced'):.2f}x | "
              f"{least(phase, 'synced') / least(ref, 'synced'):.2f}x | {memory(runs[phase])} |")
    print("\n| read + check | page cache | resident before | s (median) | MB/s | vs numpy | "
          "min vs min | RSS before MiB | peak extra MiB | extra x | peak RSS MiB | RSS x | "
          "ru_maxrss MiB | check |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for mode in args.cache.split(","):
        ref = f"read numpy [{mode}]"
        for phase in READS:
            key = f"{phase} [{mode}]"
            rs = runs[key]
            print(f"| {LABELS[phase]} | {mode} | {min(r['resident'] for r in rs):.0%} | "
                  f"{med(key):.3f} | {matrix_mb / 1e6 / med(key):,.0f} | "
                  f"{med(key) / med(ref):.2f}x | {least(key) / least(ref):.2f}x | {memory(rs)} |")
    print("\nseconds of every round, in order (writes: call / call + fsync):")
    for phase, rs in runs.items():
        label = LABELS[phase.split(" [")[0]] + (f" [{phase.split(' [')[1]}" if " [" in phase else "")
        print(f"- {label}: " + ", ".join(
            f"{r['seconds']:.3f}" + (f" / {r['synced']:.3f}" if r.get("synced") is not None else "")
            for r in rs))
    print("\n(writes: the input X and Q are resident before the call, so 'extra' is the writer's "
          "own memory; reads: 'extra' includes the matrix read, 1.00x at best; 'resident before': "
          "the smallest fraction of the file in the page cache when a child started)")


if __name__ == "__main__":
    main()
