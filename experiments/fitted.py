"""Fitted aggregators and post-processing chains, cached in the store (``<store.root>/_fitted/``)
so that every job of a sweep that needs the same fit does it once: keyed by what was fitted
(class and parameters) and on exactly which features (fit-set identity), written atomically,
under a lock, so concurrent jobs wait for the first instead of fitting again.

The cache holds pickles that deepagg itself wrote into your store; like the store, it is trusted.
Delete ``_fitted/`` to refit everything (e.g. after upgrading scikit-learn).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import uuid
from pathlib import Path
from typing import Callable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
FORMAT = 1


def fit_key(what: dict, fit_set: str) -> str:
    """16 hex digits over a description of the estimator (``what``), the fit-set identity and the
    versions of the code that fits (deepagg, scikit-learn, numpy): an upgrade refits."""
    blob = json.dumps({"format": FORMAT, "what": what, "fit_set": fit_set, "code": _versions()},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def estimator_description(estimator, ignore: tuple[str, ...] = ()) -> dict:
    """Class and parameters of a scikit-learn style estimator (``get_params``, without the
    ``ignore``d ones, such as ``device``, which do not change what is fitted), or its repr."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    params = {k: v for k, v in params.items() if k not in ignore}
    return {"class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "params": {k: repr(v) for k, v in sorted(params.items())} or repr(estimator)}


def cached_fit(root: Path | None, name: str, key: str, fit: Callable[[], T]) -> T:
    """``fit()``'s result, from ``root/_fitted/NAME-KEY.pkl`` when present (else fitted, stored).
    ``root=None`` disables the cache."""
    if root is None:
        return fit()
    from filelock import FileLock
    folder = Path(root).expanduser() / "_fitted"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{key}.pkl"
    with FileLock(str(path) + ".lock"):
        if path.exists():
            try:
                with open(path, "rb") as f:
                    obj = pickle.load(f)
                log.info("%s: fitted state read from %s", name, path)
                return obj
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
                log.warning("%s: cannot read the cached fit %s (%s); fitting again", name, path, e)
        obj = fit()
        tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
        try:
            with open(tmp, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError as e:  # a full disk must not lose the fit itself
            log.warning("%s: could not cache the fit in %s (%s)", name, path, e)
            if tmp.exists():
                tmp.unlink()
        return obj


def _versions() -> dict:
    from importlib import metadata
    out = {}
    for package in ("deepagg", "scikit-learn", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "?"
    return out
