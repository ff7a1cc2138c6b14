"""``hydra/launcher=deepagg_submitit_local`` and ``deepagg_submitit_slurm``: Hydra's submitit
launchers (the same settings) collecting each job's result on its own, so that a job killed by a
signal, timed out or lost is recorded as crashed (``surviving.record_killed``) while the others
finish and are gathered."""

import importlib.util
from dataclasses import dataclass
from typing import Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn

from hydra_plugins.deepagg_launchers.surviving import record_killed

if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None:
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher

    class _SurvivingSubmitit:
        """Hydra's submitit launch, with each job's result collected on its own: its last step
        (``[job.results()[0] for job in jobs]``) stops at the first job without a result."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
                   ) -> Sequence[JobReturn]:
            import submitit
            results, map_array = submitit.Job.results, submitit.AutoExecutor.map_array
            own_map_array = "map_array" in vars(submitit.AutoExecutor)
            index: dict[str, int] = {}
            launcher = self

            def indexed_map_array(executor, fn, *iterables):
                jobs = map_array(executor, fn, *iterables)
                index.update({job.job_id: i for i, job in enumerate(jobs)})
                return jobs

            def results_or_crash(job):
                try:
                    return results(job)
                except Exception as e:   # noqa: BLE001 -- killed, timed out, lost
                    if job.job_id not in index:
                        raise
                    i = index[job.job_id]
                    return [record_killed(
                        launcher, initial_job_idx + i, job_overrides[i],
                        f"its submitit job {job.job_id} ended without a result ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160]}); its logs: {job.paths.stdout.parent}")]

            submitit.AutoExecutor.map_array, submitit.Job.results = indexed_map_array, results_or_crash
            try:
                return super().launch(job_overrides, initial_job_idx)
            finally:
                submitit.Job.results = results
                if own_map_array:
                    submitit.AutoExecutor.map_array = map_array
                else:
                    del submitit.AutoExecutor.map_array

    class SurvivingLocalLauncher(_SurvivingSubmitit, LocalLauncher):
        """Hydra's submitit_local launcher, surviving a job killed by a signal."""

    class SurvivingSlurmLauncher(_SurvivingSubmitit, SlurmLauncher):
        """Hydra's submitit_slurm launcher, surviving a job killed, timed out or lost."""

    @dataclass
    class DeepaggLocalConf(LocalQueueConf):
        _target_: str = "hydra_plugins.deepagg_launchers.submitit_launchers.SurvivingLocalLauncher"

    @dataclass
    class DeepaggSlurmConf(SlurmQueueConf):
        _target_: str = "hydra_plugins.deepagg_launchers.submitit_launchers.SurvivingSlurmLauncher"

    for name, node in (("deepagg_submitit_local", DeepaggLocalConf),
                       ("deepagg_submitit_slurm", DeepaggSlurmConf)):
        ConfigStore.instance().store(group="hydra/launcher", name=name, node=node,
                                     provider="deepagg_launchers")
