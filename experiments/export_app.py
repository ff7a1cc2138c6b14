"""``deepagg-export JOB_DIR [--out PATH]``: a run's final database and query descriptors (before
re-ranking), with the image and query names, the run's config and its metrics, as a folder of
``.npy`` + JSON or an HDF5 file (benchmarks/descriptor_files.py documents the layouts).

The descriptors are computed again from the job's saved config (``.hydra/config.yaml``): its
features come from the store and its fits from the fit cache, so nothing is extracted or fitted
twice, and the numbers are the run's own (``deepagg-eval`` on the export reproduces its metrics
exactly). Exit codes: experiments/cli.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from benchmarks.errors import RecordsError
from experiments.cli import command_entry

log = logging.getLogger("deepagg")


def job_config(job_dir: Path, store: str | None = None):
    """The config a run saved, resolved here (``$DEEPAGG_STORE`` and ``$DEEPAGG_DATA`` of this
    environment), with ``store.root`` replaced by ``store`` if given and the keys added since
    the run at their defaults."""
    path = Path(job_dir) / ".hydra" / "config.yaml"
    if not path.exists():
        raise RecordsError(f"{job_dir} is no deepagg-run job folder: {path} is missing (export the "
                           "folder a run printed: 'outputs in ...', or a sweep's job sub-folder)")
    from experiments.config import RunConfig
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.load(path))   # keys added since
    if store is not None:
        cfg.store.root = store
    OmegaConf.resolve(cfg)
    return cfg


def export(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deepagg-export", description="Write a run's final "
                                     "descriptors (database and queries, with names and config).")
    parser.add_argument("job_dir", type=Path, help="the run's folder (holds .hydra/config.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="a folder (default: JOB_DIR/"
                        "descriptors) or an .h5 / .hdf5 file (needs h5py)")
    parser.add_argument("--store", default=None, help="the feature store (default: the run's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from benchmarks.descriptor_files import descriptor_set, write_descriptors
    from experiments.adapters import feature_source
    from experiments.pipeline import check_available, evaluate_config
    from experiments.validate import check_run, instantiate_checked
    cfg = job_config(args.job_dir, args.store)
    check_run(cfg)
    check_available(cfg, instantiate_checked(cfg.aggregator, "aggregator").learns)
    ev = evaluate_config(cfg, feature_source(cfg), cache_root=cfg.store.root)
    meta = {"exported_by": "deepagg-export", "job_dir": str(args.job_dir.resolve()),
            "metrics": ev.metrics, "rerank": ev.rerank, "config": OmegaConf.to_container(cfg)}
    out = write_descriptors(descriptor_set(ev.dataset, ev.database, ev.queries, meta),
                            args.out or args.job_dir / "descriptors")
    log.info("%s: %d database and %d query descriptors (%d-D) written to %s", ev.dataset.name,
             len(ev.database), len(ev.queries), ev.dim, out)
    print(out)
    return 0


main = command_entry("deepagg-export", export)

if __name__ == "__main__":
    sys.exit(main())
