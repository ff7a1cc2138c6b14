"""``deepagg-extract``: fill the feature store for a dataset (its queries and fitting sets too),
at every scale of ``multiscale.scales``, the work shared by any number of jobs
(conf/extract.yaml).

Every job takes the chunks no other job holds (per-chunk locks), so N jobs of a Hydra launcher
(``-m shard=0,1,2,3 num_shards=4``, joblib on one machine, submitit on SLURM) extract each chunk
once; a job ends when every chunk is stored (waiting for, or taking over from, the others). The
store is then identical, bit for bit, to a sequential extraction, and any run reads it.
"""
from __future__ import annotations

import logging
import time

import hydra
from omegaconf import DictConfig

from experiments.config import register
from experiments.cli import hydra_entry, launcher_cpus, report_errors

log = logging.getLogger("deepagg")
register()


def extract(cfg: DictConfig) -> dict:
    """Fill the store for ``cfg.dataset`` (database, query crops) and every ``cfg.fit_on`` set;
    returns {dataset name: images}."""
    from benchmarks.availability import missing_requirements
    from experiments.pipeline import missing_files_error
    from experiments.adapters import build_dataset, dataset_config, feature_source, plain
    from experiments.config import ExtractConfig
    from experiments.validate import check_backbone, check_execution, check_multiscale, check_schema
    check_schema(cfg, ExtractConfig)
    check_execution(cfg)
    check_backbone(cfg.backbone)
    check_multiscale(cfg)
    if not (0 <= cfg.shard < cfg.num_shards):
        from benchmarks.errors import ConfigError
        raise ConfigError(f"shard={cfg.shard}: must be in [0, num_shards={cfg.num_shards})")
    fit_cfgs = [dataset_config(n, cfg.data_root, "fit_on")
                for n in dict.fromkeys(cfg.fit_on) if n and n != cfg.dataset.name]
    missing = missing_requirements([plain(c) for c in (cfg.dataset, *fit_cfgs)],
                                   {cfg.dataset.name: "test set", **{
                                       c.name: "fitting set, fit_on" for c in fit_cfgs}})
    if missing:
        if fit_cfgs and any(not line.startswith(f"dataset {cfg.dataset.name} (") for line in missing):
            missing.append("or extract other fitting sets: fit_on=[demo_holdout] (ships with "
                           "deepagg) or fit_on=[] (none)")
        raise missing_files_error(missing, cfg.data_root)
    source = feature_source(cfg, cpu_limit=launcher_cpus())
    t = time.perf_counter()
    done = {}
    datasets = [build_dataset(cfg.dataset)] + [build_dataset(c) for c in fit_cfgs]
    for ds in datasets:
        source.features(ds.name, ds.images)
        extra = ds.extra_query_images()
        if extra:
            source.features(f"{ds.name}_queries", [e[1] for e in extra], [e[2] for e in extra],
                            what="query images")
        done[ds.name] = len(ds.images) + len(extra)
    log.info("shard %d of %d: %s stored in %s (%.1f s)", cfg.shard, cfg.num_shards,
             ", ".join(f"{k} ({v} images)" for k, v in done.items()), cfg.store.root,
             time.perf_counter() - t)
    return done


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="extract")
def _app(cfg: DictConfig) -> None:
    report_errors(lambda: extract(cfg))


main = hydra_entry(_app)

if __name__ == "__main__":
    main()
