"""``deepagg-eval descriptors=PATH | rankings=PATH | similarity=PATH [dataset=NAME] [method=NAME]
[rerank=...]``: score global
descriptors made by any method (or exported by ``deepagg-export``) on a registered benchmark,
with deepagg's exact blocked search, metrics (``map_at``, ``recall_at`` too), re-ranking,
records, tables and plots, so that an outside method is a row of the same tables as deepagg's
own (its ``extractor`` and ``feature_type`` are ``external``). ``rankings=PATH`` or
``similarity=PATH`` instead score a method's rankings or similarity matrix
(benchmarks/ranking_files.py; no re-ranking: that needs descriptors).

The file's rows are checked against the benchmark before anything is searched: as many
database and query rows as it has images and queries, in its order by name, finite, one width;
every mismatch is an error naming the file, the expected and the found (conf/eval.yaml;
layouts: benchmarks/descriptor_files.py). Exit codes: experiments/cli.py.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from analysis.machine import rounding_context
from analysis.records import append_record, config_hash, library_versions
from experiments.cli import hydra_entry, launcher_cpus, report_errors
from experiments.config import register

log = logging.getLogger("deepagg")
register()

EXTERNAL = "external"


def evaluate_descriptors(cfg: DictConfig) -> dict:
    """Score ``cfg.descriptors`` on ``cfg.dataset``; returns the record written."""
    from benchmarks.constraints import Device, Integer, OneOf, check_values
    from benchmarks.descriptor_files import check_against, read_descriptors
    from benchmarks.errors import DatasetError, DeepaggError
    from benchmarks.evaluation import (PROTOCOL_MAP_AT, check_scorable, evaluate_rankings,
                                       evaluate_similarity)
    from benchmarks.ranking_files import check_length, read_rankings, read_similarity
    from experiments import stages
    from experiments.adapters import build_dataset
    from experiments.config import EvalConfig
    from experiments.pipeline import check_metric_ks, config_path
    from experiments.run import save_rankings, write_outputs
    from experiments.validate import check_metric_settings, check_schema, instantiate_checked
    from features import resources
    check_schema(cfg, EvalConfig)
    check_values(cfg, {"device": Device(), "top_k": Integer(), "threads": Integer(1, optional=True),
                       "search_backend": OneOf(("numpy", "faiss"))})
    check_metric_settings(cfg)
    resources.apply(cfg.threads, 0, cfg.device, "deep", launcher_cpus())
    watch = stages.Stopwatch()
    with watch("total_s"):
        dataset = build_dataset(cfg.dataset)
        check_scorable(dataset)
        check_metric_ks(cfg, len(dataset))
        reranker = instantiate_checked(cfg.rerank, "rerank")
        with config_path("rerank"):
            reranker.check_database_size(len(dataset))
        kind, path = scored_input(cfg, reranker)
        d = None
        with watch("read_s"):
            if kind == "descriptors":
                d = read_descriptors(path)
                check_against(d, dataset, path)
            elif kind == "rankings":
                rankings = read_rankings(path, dataset)
                check_length(rankings, path, [*DEFAULT_KS, *cfg.map_at, *cfg.recall_at,
                                              PROTOCOL_MAP_AT.get(dataset.protocol, 0)], len(dataset))
            else:
                scores = read_similarity(path, dataset)
        with watch("search_s"), config_path("rerank"):
            if kind == "descriptors":
                metrics, result = stages.rank_and_score(dataset, d.queries, d.database, reranker,
                                                        cfg.top_k, cfg.device, cfg.search_backend,
                                                        cfg.map_at, cfg.recall_at)
            elif kind == "rankings":
                metrics = evaluate_rankings(dataset, rankings, map_at=tuple(cfg.map_at),
                                            recall_at=tuple(cfg.recall_at))
                result = SimpleNamespace(indices=rankings[:, :cfg.top_k])
            else:
                try:
                    metrics, result = evaluate_similarity(dataset, scores, min(cfg.top_k, len(dataset)),
                                                          map_at=tuple(cfg.map_at),
                                                          recall_at=tuple(cfg.recall_at))
                except ValueError as e:
                    if isinstance(e, DeepaggError):
                        raise
                    raise DatasetError(f"similarity {path}: {e}; fix them at the source") from None
    aps = metrics.pop("aps")
    metrics = {k: v for k, v in metrics.items() if not k.endswith("/aps")}
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    record = {
        "experiment": cfg.experiment_name, "dataset": dataset.name,
        "aggregator": cfg.method or path.stem, "aggregator_class": EXTERNAL,
        "aggregator_params": {}, "extractor": EXTERNAL, "feature_type": EXTERNAL,
        "rerank": dict(HydraConfig.get().runtime.choices).get("rerank", "none"),
        "rerank_label": reranker.label, "dim": d.dim if d is not None else None,
        "postprocess": {"fit_on": "-"},
        "aggregator_fit_on": "-", "metrics": metrics, "timings": watch.rounded(),
        "n_images": len(dataset.images), "n_queries": len(dataset.queries),
        "protocol": dataset.protocol, "crop_queries": dataset.crop_queries,
        kind: str(path.resolve()), "descriptors_meta": d.meta if d is not None else {},
        "config_hash": config_hash(resolved), "config": resolved, "versions": library_versions(),
        "rounding": rounding_context(cfg.device), "job_dir": str(job_dir),
        "timestamp": dt.datetime.now().isoformat(timespec="seconds")}
    append_record(job_dir / "results.jsonl", record)
    save_rankings(job_dir / "rankings.npz", SimpleNamespace(topk=result.indices, aps=aps,
                                                              dataset=dataset), cfg.top_k)
    write_outputs(job_dir)
    from analysis.tables import format_table, records_frame
    print(format_table(records_frame([record])))
    log.info("scored %s on %s in %.1f s; outputs in %s", path, dataset.name,
             record["timings"]["total_s"], job_dir)
    return record


#: the mP@k every protocol reports
DEFAULT_KS = (1, 5, 10)


def scored_input(cfg: DictConfig, reranker) -> tuple[str, Path]:
    """("descriptors" | "rankings" | "similarity", path): the one input given; ConfigError when
    none or several are, or when rankings or a similarity are to be re-ranked."""
    from benchmarks.errors import ConfigError
    from benchmarks.rerank import NoRerank
    given = [key for key in ("descriptors", "rankings", "similarity") if cfg[key] is not None]
    if len(given) != 1:
        raise ConfigError(f"deepagg-eval scores one input: give descriptors=PATH, rankings=PATH or "
                          f"similarity=PATH (given: {', '.join(given) or 'none'})")
    if given[0] != "descriptors" and not isinstance(reranker, NoRerank):
        raise ConfigError(f"rerank={reranker.label} re-ranks descriptors; {given[0]}= has none: "
                          "use rerank=none")
    return given[0], Path(cfg[given[0]])


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="eval")
def _app(cfg: DictConfig) -> None:
    report_errors(lambda: evaluate_descriptors(cfg))


main = hydra_entry(_app)

if __name__ == "__main__":
    main()
