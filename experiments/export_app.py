"""``deepagg-export JOB_DIR [--out PATH]``: a run's final database and query descriptors (before
re-ranking), with the image and query names, the run's config and its metrics, as a folder of
``.npy`` + JSON or an HDF5 file (benchmarks/descriptor_files.py documents the layouts).

The descriptors are computed again from the job's saved config (``.hydra/config.yaml``): its
features come from the store and its fits from the fit cache, so nothing is extracted or fitted
twice, and the numbers are the run's own (``deepagg-eval`` on the export reproduces its metrics
exactly). ``--local`` adds each image's local features from the store (the layout's ``local``
part; not for runs that discarded them or ran at several scales). Exit codes: experiments/cli.py.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
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


def check_local_export(cfg) -> None:
    """ConfigError unless the run's local features are in the store, at one scale."""
    from benchmarks.errors import ConfigError
    if cfg.store.local_features == "discard":
        raise ConfigError("--local: the run discarded its local features "
                          "(store.local_features=discard); run it again with "
                          "store.local_features=keep to export them")
    if list(cfg.multiscale.scales) != [1.0]:
        raise ConfigError(f"--local: the run is multi-scale (multiscale.scales="
                          f"{list(cfg.multiscale.scales)}); local features are exported for "
                          "single-scale runs only")


class QueryFeatures(Sequence):
    """Each query's local features: its own (a cropped query) or its database image's."""

    def __init__(self, dataset, test):
        self.database, self.own = test.database, test.queries
        self.where = {int(q): i for i, q in enumerate(test.query_index)}
        self.db_index = [q.db_index for q in dataset.queries]

    def __len__(self) -> int:
        return len(self.db_index)

    def __getitem__(self, j: int):
        return self.own[self.where[j]] if j in self.where else self.database[self.db_index[j]]


def local_features(source, dataset) -> dict:
    """{"database": ..., "queries": ...} local features of ``dataset`` from the store."""
    from experiments.stages import load_test_features
    test = load_test_features(source, dataset)
    return {"database": test.database, "queries": QueryFeatures(dataset, test)}


def export(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="deepagg-export", description="Write a run's final "
                                     "descriptors (database and queries, with names and config).")
    parser.add_argument("job_dir", type=Path, help="the run's folder (holds .hydra/config.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="a folder (default: JOB_DIR/"
                        "descriptors) or an .h5 / .hdf5 file (needs h5py)")
    parser.add_argument("--store", default=None, help="the feature store (default: the run's)")
    parser.add_argument("--local", action="store_true", help="add the local features of every "
                        "database image and query (from the store)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    from benchmarks.descriptor_files import descriptor_set, write_descriptors
    from experiments.adapters import feature_source
    from experiments.pipeline import check_available, evaluate_config
    from experiments.validate import check_run, instantiate_checked
    cfg = job_config(args.job_dir, args.store)
    check_run(cfg)
    check_available(cfg, instantiate_checked(cfg.aggregator, "aggregator").learns)
    if args.local:
        check_local_export(cfg)
    source = feature_source(cfg)
    ev = evaluate_config(cfg, source, cache_root=cfg.store.root)
    meta = {"exported_by": "deepagg-export", "job_dir": str(args.job_dir.resolve()),
            "metrics": ev.metrics, "rerank": ev.rerank, "codes": ev.codes,
            "config": OmegaConf.to_container(cfg)}
    local = local_features(source, ev.dataset) if args.local else None
    out = write_descriptors(descriptor_set(ev.dataset, ev.database, ev.queries, meta, local),
                            args.out or args.job_dir / "descriptors")
    log.info("%s: %d database and %d query descriptors (%d-D) written to %s", ev.dataset.name,
             len(ev.database), len(ev.queries), ev.dim, out)
    print(out)
    return 0


main = command_entry("deepagg-export", export)

if __name__ == "__main__":
    sys.exit(main())
