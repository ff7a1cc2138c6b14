"""Recording a job that was killed by a signal (SIGKILL, the OOM killer, a node that dies) as
``crashed`` in its own folder, as the job itself would have (``experiments.run.record_failure``),
so that the sweep's other jobs are gathered and the sweep exits 1 listing it; running the sweep
again evaluates only what did not complete. Hydra's own launchers end the whole sweep instead:
joblib's loky pool is broken by a dead worker and cancels every pending job, submitit's parent
raises on the first job without a result."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)


def record_killed(launcher, idx: int, overrides: Sequence[str], reason: str) -> JobReturn:
    """Record job ``idx`` (``overrides``) of ``launcher``'s sweep as crashed because of
    ``reason``, and return a completed JobReturn so that Hydra's sweeper goes on to the
    gathering."""
    from experiments.cli import CRASHED
    from experiments.run import record_failure
    sweep_config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = f"{sweep_config.hydra.job.name}_{idx}"
        sweep_config.hydra.job.num = idx
    HydraConfig.instance().set_config(sweep_config)
    output_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
    with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
        sweep_config.hydra.runtime.output_dir = str(output_dir.absolute())
    HydraConfig.instance().set_config(sweep_config)
    output_dir.mkdir(parents=True, exist_ok=True)
    task_cfg = OmegaConf.masked_copy(sweep_config, [k for k in sweep_config if k != "hydra"])
    log.error("job #%d (%s): %s", idx, " ".join(filter_overrides(overrides)), reason)
    try:
        record_failure(task_cfg, RuntimeError(reason), CRASHED)
    except Exception:   # noqa: BLE001 -- the sweep must still be gathered
        log.exception("job #%d: its failure could not be recorded", idx)
    return JobReturn(overrides=list(overrides), cfg=task_cfg, hydra_cfg=sweep_config,
                     working_dir=str(output_dir), task_name=str(sweep_config.hydra.job.name),
                     status=JobStatus.COMPLETED, _return_value=None)
