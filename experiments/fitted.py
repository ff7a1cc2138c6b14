"""Fitted aggregators and post-processing chains, cached in the store (``<store.root>/_fitted/``)
so that every job of a sweep that needs the same fit does it once: keyed by what was fitted
(class and parameters) and on exactly which features (fit-set identity), written atomically,
under a lock, so concurrent jobs wait for the first instead of fitting again.

Each file holds its key, its name, the class of what was fitted and the versions of the code that
fitted it beside the fitted object, all compared on loading (as joblib's ``Memory`` does): a file
copied over another, a damaged pickle, an object of another class or another version is never
used, only warned about (naming the file) and fitted again. A store on a read-only filesystem (one
shared with a group) is read without locks, and what it lacks is fitted without being cached,
said once per process.
"""
from __future__ import annotations

import errno
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
FORMAT = 2          # 2: the fitted object in an envelope with its key, name, class and versions
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)
_said_read_only: set[str] = set()


def fit_key(what: dict, fit_set: str) -> str:
    """16 hex digits over a description of the estimator (``what``), the fit-set identity and the
    versions of the code that fits (deepagg, scikit-learn, numpy): an upgrade refits."""
    blob = json.dumps({"format": FORMAT, "what": what, "fit_set": fit_set, "code": _versions()},
                      sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def estimator_description(estimator) -> dict:
    """Class and parameters of a scikit-learn style estimator (``get_params``), or its repr."""
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    return {"class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "params": {k: repr(v) for k, v in sorted(params.items())} or repr(estimator)}


def cached_fit(root: Path | None, name: str, key: str, fit: Callable[[], T],
               expected: type | None = None) -> T:
    """``fit()``'s result, from ``root/_fitted/NAME-KEY.pkl`` when that file holds a fit of
    this ``name`` and ``key``, of class ``expected`` (when given) and of the current code
    versions; else fitted and stored. ``root=None`` disables the cache."""
    if root is None:
        return fit()
    folder = Path(root).expanduser() / "_fitted"
    path = folder / f"{name}-{key}.pkl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        from filelock import FileLock
        lock = FileLock(str(path) + ".lock")
        lock.acquire()
    except OSError as e:
        if e.errno not in READ_ONLY:
            raise
        _say_read_only(folder, e)
        lock = None
    try:
        if path.exists():
            obj = _load(path, name, key, expected)
            if obj is not None:
                log.info("%s: fitted state read from %s", name, path)
                return obj
        obj = fit()
        if lock is not None:
            _save(path, name, key, obj)
        return obj
    finally:
        if lock is not None:
            lock.release()


def _load(path: Path, name: str, key: str, expected: type | None):
    """The fitted object of the file, or None (with a warning naming the file) when it cannot be
    read or is not the fit asked for."""
    try:
        with open(path, "rb") as f:
            envelope = pickle.load(f)
    except Exception as e:   # noqa: BLE001 -- any unreadable file is a cache miss, never a crash
        log.warning("%s: cannot read the cached fit %s (%s: %s); fitting again", name, path,
                    type(e).__name__, e)
        return None
    problem = None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        problem = "written by another deepagg version"
    elif envelope.get("key") != key or envelope.get("name") != name:
        problem = (f"it holds the fit {envelope.get('name')}-{envelope.get('key')}, not this one "
                   "(a file copied over another?)")
    elif envelope.get("versions") != _versions():
        problem = f"fitted with {envelope.get('versions')}, this is {_versions()}"
    elif expected is not None and not isinstance(envelope.get("state"), expected):
        problem = (f"it holds a {type(envelope.get('state')).__name__}, not a "
                   f"{expected.__name__}")
    elif envelope.get("class") != _class_name(envelope.get("state")):
        problem = "its recorded class does not match its content"
    if problem:
        log.warning("%s: the cached fit %s is not usable (%s); fitting again", name, path, problem)
        return None
    return envelope["state"]


def _save(path: Path, name: str, key: str, obj) -> None:
    envelope = {"format": FORMAT, "name": name, "key": key, "class": _class_name(obj),
                "versions": _versions(), "state": obj}
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        with open(tmp, "wb") as f:
            pickle.dump(envelope, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as e:  # a full disk must not lose the fit itself
        log.warning("%s: could not cache the fit in %s (%s)", name, path, e)
        if tmp.exists():
            tmp.unlink()


def _class_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _say_read_only(folder: Path, e: OSError) -> None:
    if str(folder) not in _said_read_only:
        _said_read_only.add(str(folder))
        log.warning("the fit cache %s is read-only (%s): cached fits are read without locks, "
                    "new ones are fitted but not cached", folder, e.strerror)


def _versions() -> dict:
    from importlib import metadata
    out = {}
    for package in ("deepagg", "scikit-learn", "numpy"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "?"
    return out
