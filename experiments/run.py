"""``deepagg-run``: evaluate one configuration (or, with -m, a sweep of them) as a Hydra app.

Writes into the Hydra run directory: ``.hydra/config.yaml`` (resolved config), ``results.jsonl``,
``results.csv``, ``table.md``, ``comparison.png`` and ``rankings.npz`` (top-k lists for reports).

Exit codes (experiments/cli.py): 0 done; 2 a setting, a file or a dataset that cannot work (one
message naming the key or the file: the project's errors and Hydra's own config errors alike); 1
anything else, which is a bug and keeps its traceback.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from analysis.machine import rounding_context
from analysis.records import append_record, completed, config_hash, library_versions, read_records
from experiments.cli import hydra_entry, launcher_cpus, report_errors
from experiments.config import register

log = logging.getLogger("deepagg")
register()


def aggregator_label(choice: str, overrides: list[str]) -> str:
    """The aggregator's config name plus any of its parameters set on the command line or by a
    sweep, e.g. ``gem(p=3)``, so that rows of a parameter sweep stay apart in tables and plots."""
    params = [o.split(".", 1)[1] for o in overrides if o.startswith("aggregator.")]
    return f"{choice}({','.join(params)})" if params else choice


def build_record(cfg: DictConfig, ev, choices: dict, job_dir: Path, chash: str) -> dict:
    from features.extractor import feature_kind
    resolved = OmegaConf.to_container(cfg, resolve=True)
    agg_params = {k: v for k, v in resolved["aggregator"].items() if k != "_target_"}
    return {
        "experiment": cfg.experiment_name,
        "dataset": ev.dataset.name,
        "aggregator": aggregator_label(choices.get("aggregator", "custom"),
                                       list(HydraConfig.get().overrides.task)),
        "aggregator_class": resolved["aggregator"]["_target_"].rsplit(".", 1)[-1],
        "aggregator_params": agg_params,
        "extractor": choices.get("backbone", cfg.backbone.get("name", "custom")),
        "feature_type": feature_kind(cfg.backbone),
        "scales": ev.scales,
        "rerank": choices.get("rerank", "none"),
        "rerank_label": ev.rerank,
        "dim": ev.dim,
        "codes": ev.codes,
        "bytes_per_image": ev.bytes_per_image,
        "postprocess": resolved["postprocess"] | {"fit_on": ev.fit_on},
        "aggregator_fit_on": ev.aggregator_fit_on,
        "metrics": ev.metrics,
        "timings": ev.timings,
        "n_images": len(ev.dataset.images),
        "n_queries": len(ev.dataset.queries),
        "protocol": ev.dataset.protocol,
        "crop_queries": ev.dataset.crop_queries,
        "config_hash": chash,
        "config": resolved,
        "versions": library_versions(),
        "rounding": rounding_context(cfg.device),
        "job_dir": str(job_dir),
        "timestamp": dt.datetime.now().isoformat(timespec="seconds"),
    }


def save_rankings(path: Path, ev, top_k: int) -> None:
    import numpy as np
    ds = ev.dataset
    np.savez_compressed(path, topk=ev.topk[:, :top_k].astype(np.int64), aps=ev.aps,
                        query_names=np.array([q.image.name for q in ds.queries]),
                        db_names=np.array([im.name for im in ds.images]))


def write_outputs(job_dir: Path) -> None:
    """results.csv, table.md and comparison.png from every record in ``job_dir``."""
    from analysis.plots import comparison_plot
    from analysis.records import gather
    from analysis.tables import records_frame, write_tables
    records = gather(job_dir)
    if not records:
        return
    write_tables(records_frame(records), job_dir)
    done = [r for r in records if completed(r) and r.get("metrics")]
    if done:
        comparison_plot(records_frame(done), job_dir / "comparison.png")


def swept_datasets() -> list[str]:
    swept = HydraConfig.get().sweeper.get("params") or {}
    return [d.strip() for d in str(swept.get("dataset", "")).split(",") if d.strip()]


def run(cfg: DictConfig) -> dict | None:
    """Evaluate ``cfg`` unless an identical configuration already has a record here."""
    from experiments.pipeline import check_available, evaluate_config
    from experiments.validate import check_run, instantiate_checked
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    choices = dict(HydraConfig.get().runtime.choices)
    h = config_hash(OmegaConf.to_container(cfg, resolve=True))
    results = job_dir / "results.jsonl"
    if cfg.skip_existing and any(r.get("config_hash") == h and completed(r)
                                 for r in read_records(results)):
        log.info("skipping: configuration %s already evaluated in %s", h, results)
        return None
    check_run(cfg)
    learns = instantiate_checked(cfg.aggregator, "aggregator").learns
    check_available(cfg, learns, swept_datasets())
    t = time.perf_counter()
    from experiments.adapters import feature_source
    ev = evaluate_config(cfg, feature_source(cfg, cpu_limit=launcher_cpus()),
                         cache_root=cfg.store.root)
    record = build_record(cfg, ev, choices, job_dir, h)
    append_record(results, record)
    save_rankings(job_dir / "rankings.npz", ev, cfg.top_k)
    write_outputs(job_dir)
    log.info("timings (s): %s", " ".join(f"{k}={v}" for k, v in ev.timings.items()))
    from analysis.tables import format_table, records_frame
    print(format_table(records_frame([record])))
    log.info("done in %.1f s; outputs in %s", time.perf_counter() - t, job_dir)
    return record


def record_failure(cfg: DictConfig, error: Exception, status: str) -> None:
    """A record for a configuration of a sweep that did not complete: what it was, ``status``
    (experiments.cli.FAILED or CRASHED) and the ``error`` message, no metrics. A rerun of the sweep
    evaluates it again (``skip_existing`` skips completed records only)."""
    from experiments.adapters import instantiate_group
    from experiments.validate import scales_label
    from features.extractor import feature_kind
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    choices = dict(HydraConfig.get().runtime.choices)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except Exception:   # noqa: BLE001 -- an interpolation that cannot resolve is the failure itself
        resolved = OmegaConf.to_container(cfg, resolve=False)
    h = config_hash(resolved)
    results = job_dir / "results.jsonl"
    if any(r.get("config_hash") == h and completed(r) for r in read_records(results)):
        log.warning("the evaluation of %s was recorded before the failure; its record stands", h)
        return
    dataset = resolved.get("dataset") or {}
    post = resolved.get("postprocess") or {}
    agg = resolved.get("aggregator") or {}
    try:
        kind = feature_kind(cfg.backbone)
    except Exception:   # noqa: BLE001 -- the backbone itself may be what failed
        kind = "deep"
    try:
        scales = {"scales": scales_label(cfg, instantiate_group(cfg.aggregator, "aggregator"))}
    except Exception:   # noqa: BLE001 -- the multiscale or aggregator settings may be what failed
        scales = {}
    append_record(results, {
        "experiment": cfg.get("experiment_name"), "status": status, "error": str(error),
        "error_type": type(error).__name__,
        "dataset": dataset.get("name", choices.get("dataset")) if isinstance(dataset, dict) else "?",
        "aggregator": aggregator_label(choices.get("aggregator", "custom"),
                                       list(HydraConfig.get().overrides.task)),
        "aggregator_params": {k: v for k, v in agg.items() if k != "_target_"},
        "extractor": choices.get("backbone", "custom"), "feature_type": kind, **scales,
        "rerank": choices.get("rerank", "none"), "dim": post.get("dim") if post.get("pca") else None,
        "postprocess": post, "metrics": {}, "config_hash": h, "config": resolved,
        "versions": library_versions(), "job_dir": str(job_dir),
        "timestamp": dt.datetime.now().isoformat(timespec="seconds")})


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def _app(cfg: DictConfig) -> None:
    report_errors(lambda: run(cfg), on_failure=lambda e, status: record_failure(cfg, e, status))


main = hydra_entry(_app)


if __name__ == "__main__":
    main()
