"""Sizing a job's threads and loader workers to the cores it really has, so that several jobs on
one machine (Hydra's joblib launcher, SLURM job steps) do not starve each other."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def cores_available(limit: int | None = None) -> int:
    """The CPU cores this process may use: its affinity mask (taskset, SLURM's cgroups), capped by
    a cgroup v2 CPU quota, SLURM_CPUS_PER_TASK and OMP_NUM_THREADS (which the joblib launcher sets
    to cores / n_jobs in its workers) when set, and by ``limit`` (the cores a launcher granted the
    job, e.g. submitit's ``cpus_per_task``, which its local executor enforces nowhere)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    for var in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            cores = min(cores, int(value))
    if limit is not None and limit > 0:
        cores = min(cores, int(limit))
    return max(1, cores)


def plan(threads: int | None, num_workers: int | None, device: str = "cpu",
         kind: str = "deep", cpu_limit: int | None = None) -> tuple[int, int]:
    """(torch threads, loader workers): explicit settings win. By default torch uses every core of
    the job; loader workers (one thread each) decode and resize while the model computes:
    ``cores - 1`` of them (at most 8) when the model runs on a GPU; none for a CNN on the CPU,
    where the forward pass needs every core and decoding is a few per cent of it (measured:
    perf/extraction_speed.py); ``cores`` (at most 8) for SIFT, whose whole extraction runs in the
    workers. ``cpu_limit``: see ``cores_available``."""
    cores = cores_available(cpu_limit)
    t = threads if threads is not None else cores
    if num_workers is not None:
        w = num_workers
    elif kind == "sift":
        w = min(8, cores) if cores > 1 else 0
    elif device.startswith("cuda"):
        w = min(8, cores - 1)
    else:
        w = 0
    return t, w


def batch_size(batch: int | None, device: str = "cpu") -> int:
    """Images per forward pass: the setting, else 1 on the CPU (measured fastest here: a batch of
    4 mixed-shape Lite0 images runs at 0.6 x the images/s of single images on 2 cores,
    perf/extraction_speed.py) and 32 on a GPU, where batches keep the device busy."""
    if batch is not None:
        return batch
    return 32 if device.startswith("cuda") else 1


def apply(threads: int | None, num_workers: int | None, device: str = "cpu",
          kind: str = "deep", cpu_limit: int | None = None) -> tuple[int, int]:
    """Set torch's thread count and return the plan (see ``plan``)."""
    t, w = plan(threads, num_workers, device, kind, cpu_limit)
    import torch
    if torch.get_num_threads() != t:
        torch.set_num_threads(t)
    log.info("threads: torch %d, loader workers %d (%d cores available)", t, w,
             cores_available(cpu_limit))
    return t, w
