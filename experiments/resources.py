"""Sizing a job's threads and loader workers to the cores it really has, so that several jobs on
one machine (Hydra's joblib launcher, SLURM job steps) do not starve each other."""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def cores_available() -> int:
    """The CPU cores this process may use: its affinity mask (taskset, SLURM's cgroups), capped by
    a cgroup v2 CPU quota, SLURM_CPUS_PER_TASK and OMP_NUM_THREADS (which the joblib launcher sets
    to cores / n_jobs in its workers) when set."""
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
    return max(1, cores)


def plan(threads: int | None, num_workers: int | None) -> tuple[int, int]:
    """(torch threads, loader workers): explicit settings win; by default torch uses every core of
    the job and the loader ``cores - 1`` worker processes (at most 4, none on one core). The
    workers decode while the model computes; each runs one thread."""
    cores = cores_available()
    t = threads if threads is not None else cores
    w = num_workers if num_workers is not None else min(4, cores - 1)
    return t, w


def apply(threads: int | None, num_workers: int | None) -> tuple[int, int]:
    """Set torch's thread count (when torch is loaded or needed) and return the plan."""
    t, w = plan(threads, num_workers)
    import torch
    if torch.get_num_threads() != t:
        torch.set_num_threads(t)
    log.info("threads: torch %d, loader workers %d (%d cores available)", t, w, cores_available())
    return t, w
