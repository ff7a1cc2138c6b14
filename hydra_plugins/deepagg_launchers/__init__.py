"""deepagg's Hydra launchers: joblib and submitit whose sweeps survive a job killed by a signal
(``hydra/launcher=deepagg_joblib``, ``deepagg_submitit_local``, ``deepagg_submitit_slurm``; each
registered only where Hydra's launcher it extends is installed). A Hydra plugin must live in the
``hydra_plugins`` package: ``surviving.py`` records a killed job, ``joblib_launcher.py`` and
``submitit_launchers.py`` are the launchers."""
