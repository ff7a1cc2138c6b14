"""``hydra/launcher=deepagg_joblib``: Hydra's joblib launcher (the same settings) whose sweep
survives a worker killed by a signal. loky ends the jobs running beside a dead worker too, so
every job without a result is run once more in a fresh pool; one killed again is recorded as
crashed (``surviving.record_killed``)."""

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, setup_globals

from hydra_plugins.deepagg_launchers.surviving import record_killed

log = logging.getLogger(__name__)
#: rounds of a sweep: the first, and one more for the jobs a dead worker took down with it
ROUNDS = 2


def _indexed(i: int, fn, *args) -> tuple[int, JobReturn]:
    return i, fn(*args)


if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is not None:
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    class SurvivingJoblibLauncher(JoblibLauncher):
        """Hydra's joblib launcher, surviving a worker killed by a signal."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
                   ) -> Sequence[JobReturn]:
            from hydra_plugins.hydra_joblib_launcher._core import execute_job, process_joblib_cfg
            from joblib import Parallel, delayed
            from joblib.externals.loky.process_executor import TerminatedWorkerError
            setup_globals()
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
            Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
            joblib_cfg = dict(self.joblib)
            joblib_cfg["backend"] = "loky"   # as Hydra's: threads cannot run Hydra jobs
            process_joblib_cfg(joblib_cfg)
            state = Singleton.get_state()
            results: dict[int, JobReturn] = {}
            todo = list(range(len(job_overrides)))
            log.info("Joblib.Parallel(%s) is launching %d jobs (surviving killed workers)",
                     ",".join(f"{k}={v}" for k, v in joblib_cfg.items()), len(todo))
            for round_ in range(1, ROUNDS + 1):
                try:
                    jobs = Parallel(**joblib_cfg, return_as="generator_unordered")(
                        delayed(_indexed)(i, execute_job, initial_job_idx + i, job_overrides[i],
                                          self.hydra_context, self.config, self.task_function, state)
                        for i in todo)
                    for i, ret in jobs:
                        results[i] = ret
                    todo = []
                    break
                except TerminatedWorkerError as e:
                    todo = [i for i in todo if i not in results]
                    log.warning("a worker of the sweep was killed (%s); %d job(s) without a result%s",
                                str(e).splitlines()[0][:160], len(todo),
                                ", running them again" if round_ < ROUNDS else "")
            for i in todo:
                results[i] = record_killed(self, initial_job_idx + i, job_overrides[i],
                                           "its process was killed by a signal, in every round of "
                                           "the joblib sweep; run the sweep again to retry it")
            return [results[i] for i in range(len(job_overrides))]

    @dataclass
    class DeepaggJoblibConf(JobLibLauncherConf):
        _target_: str = "hydra_plugins.deepagg_launchers.joblib_launcher.SurvivingJoblibLauncher"

    ConfigStore.instance().store(group="hydra/launcher", name="deepagg_joblib",
                                 node=DeepaggJoblibConf, provider="deepagg_launchers")
