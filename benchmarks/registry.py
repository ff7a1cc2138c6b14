"""One entry per dataset kind: its loader, the files it needs, how to download it, its on-disk layout.

Read by ``benchmarks.availability`` (what is missing, said before a long run) and by
``benchmarks.downloads`` (``deepagg-download NAME``). A new dataset is a loader module, one entry
here, its ``conf/dataset/NAME.yaml`` and a paragraph of docs/datasets.md.

Entries name their loader by its dotted path, exactly as the configs' ``_target_`` does; nothing
is imported from it until a config is checked (the demo loader pulls in OpenCV).
"""
from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from benchmarks import custom, gldv2, holidays, instre, oxford, revisited, ukbench
from benchmarks.errors import DatasetError


@dataclass(frozen=True)
class Remote:
    """One file to fetch. Archives (.tgz, .tar.gz, .tar, .zip) are extracted into ``into`` (a folder
    under the dataset root; ``flatten`` drops the archive's folders); other files are saved there."""

    url: str
    into: str = ""
    flatten: bool = False
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url.split("?", 1)[0]).name

    @property
    def is_archive(self) -> bool:
        return self.filename.endswith((".tgz", ".tar.gz", ".tar", ".zip"))


@dataclass(frozen=True)
class Recipe:
    """How ``deepagg-download`` gets a dataset: its files, and the image count expected under
    ``images_in`` afterwards; or, for sets no library can fetch, the ``manual`` steps."""

    remotes: tuple[Remote, ...] = ()
    images_in: str = ""
    n_images: int | None = None
    manual: str | None = None


@dataclass(frozen=True)
class Requirement:
    """A folder or file a loader needs. ``source``: the entry whose download provides it, into
    ``source_root`` (its ``--root``); None when the user provides it, as ``hint`` says."""

    path: Path
    what: str
    source: str | None = None
    source_root: Path | None = None
    hint: str = "see docs/datasets.md for the layout"

    def how(self) -> str:
        """How to get it, in one clause."""
        if self.source is None:
            return self.hint
        recipe = ENTRIES[self.source].recipe
        command = f"`deepagg-download {self.source} --root {self.source_root or self.path}`"
        return f"{command} prints the manual steps" if recipe.manual else f"get it with {command}"


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset kind.

    key:      the ``deepagg-download`` name.
    loader:   the loader's dotted path (a config's ``_target_``); None for distractor sets, which
              join a benchmark through its loader's ``distractors_root``.
    layout:   the on-disk layout under the dataset root, as the loader's errors print it.
    required: ``(**loader kwargs) -> [Requirement]``, the loader's defaults filled in; None when the
              loader needs nothing on disk.
    recipe:   how to download it; None when there is nothing to download (your own data, the demo).
    """

    key: str
    loader: str | None
    layout: str
    required: Callable[..., list[Requirement]] | None = None
    recipe: Recipe | None = None

    def loader_function(self) -> Callable:
        module, _, name = self.loader.rpartition(".")
        return getattr(importlib.import_module(module), name)

    def requirements(self, **loader_kwargs) -> list[Requirement]:
        """What a config of this loader (its keys = the loader's arguments) needs on disk."""
        if self.required is None:
            return []
        params = {p: v for p, v in inspect.signature(self.loader_function()).parameters.items()
                  if v.kind in (v.POSITIONAL_OR_KEYWORD, v.KEYWORD_ONLY)}
        unset = [p for p, v in params.items() if v.default is v.empty and p not in loader_kwargs]
        if unset:
            raise DatasetError(f"the config sets no {', '.join(unset)} (arguments of {self.loader})")
        defaults = {p: v.default for p, v in params.items() if v.default is not v.empty}
        return self.required(**{**defaults, **loader_kwargs})


def entry(key: str) -> DatasetEntry:
    """The entry named ``key``; DatasetError listing the known names otherwise."""
    try:
        return ENTRIES[key]
    except KeyError:
        raise DatasetError(f"unknown dataset {key!r}; known: {', '.join(sorted(ENTRIES))}") from None


def entry_for_loader(target: str) -> DatasetEntry | None:
    """The entry whose loader is ``target`` (a config's ``_target_``), None for other loaders."""
    return next((e for e in ENTRIES.values() if e.loader is not None and e.loader == target), None)


def downloadable() -> list[str]:
    """The names ``deepagg-download`` accepts (manual-only sets included: it prints their steps)."""
    return sorted(k for k, e in ENTRIES.items() if e.recipe is not None)


# ----------------------------------------------------------------------------- required files
def _holidays_files(root, rotation_file=None, **_) -> list[Requirement]:
    root = Path(root)
    need = [Requirement(root, "images", "holidays", root)]
    if rotation_file:
        need.append(Requirement(root / rotation_file, "rotation file", hint=(
            "write it, one 'NAME DEGREES' line per sideways image (docs/datasets.md, Holidays rotation)")))
    return need


def _buildings_files(key: str) -> Callable[..., list[Requirement]]:
    def files(root, distractors_root=None, distractors_list=None, **_) -> list[Requirement]:
        root = Path(root)
        return ([Requirement(root / "jpg", "images", key, root),
                 Requirement(root / "gt_files", "ground truth", key, root)]
                + _distractor_files("flickr100k", distractors_root, distractors_list))
    return files


def _revisited_files(key: str) -> Callable[..., list[Requirement]]:
    def files(root, gnd_file, distractors_root=None, distractors_list=None, **_) -> list[Requirement]:
        root = Path(root)
        return ([Requirement(root / "jpg", "images", key, root),
                 Requirement(root / gnd_file, "ground truth", key, root)]
                + _distractor_files("revisitop1m", distractors_root, distractors_list))
    return files


def _distractor_files(key: str, images, list_file) -> list[Requirement]:
    """The distractor folder (and list) of a benchmark, provided by entry ``key``'s download; the
    download root is the folder itself, or its parent when the images sit in ROOT/images_in."""
    if not images:
        return []
    images = Path(images)
    images_in = ENTRIES[key].recipe.images_in
    root = images.parent if images_in and images.name == images_in else images
    need = [Requirement(images, "distractor images", key, root)]
    return need + ([Requirement(Path(list_file), "distractor list", key, root)] if list_file else [])


def _ukbench_files(root, **_) -> list[Requirement]:
    return [Requirement(Path(root), "images", "ukbench", Path(root))]


def _gldv2_files(root, index_csv, test_csv, solution_csv, **_) -> list[Requirement]:
    root = Path(root)
    return [Requirement(root / "index", "index images", "gldv2", root),
            Requirement(root / "test", "test images", "gldv2", root),
            *(Requirement(root / f, what, "gldv2", root) for f, what in (
                (index_csv, "index list"), (test_csv, "test list"), (solution_csv, "ground truth")))]


def _custom_csv_files(root, database_csv, queries_csv, relevance_csv, **_) -> list[Requirement]:
    hint = "see docs/datasets.md (your own data) for the CSV layout"
    return [Requirement(Path(root), "images", hint=hint),
            *(Requirement(Path(root) / f, "ground truth", hint=hint)
              for f in (database_csv, queries_csv, relevance_csv))]


def _instre_files(root, ground_truth, **_) -> list[Requirement]:
    root = Path(root)
    return ([Requirement(root / top, "images", "instre", root)
             for top in ("INSTRE-S1", "INSTRE-S2", "INSTRE-M")]
            + [Requirement(root / ground_truth, "ground truth", "instre", root)])


def _custom_h5_files(root, ground_truth, **_) -> list[Requirement]:
    hint = "see docs/datasets.md (your own data) for the HDF5 layout"
    return [Requirement(Path(root), "images", hint=hint),
            Requirement(Path(root) / ground_truth, "ground truth", hint=hint)]


def _custom_files(root, ground_truth, **_) -> list[Requirement]:
    hint = "see docs/datasets.md (your own data) for the layout and the ground-truth schema"
    return [Requirement(Path(root), "images", hint=hint),
            Requirement(Path(root) / ground_truth, "ground truth", hint=hint)]


# ----------------------------------------------------------------------------- the entries
_OXFORD = "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/"
_PARIS = "https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/"
_REVISITOP = "http://cmp.felk.cvut.cz/revisitop/data/datasets/"
_R1M = "http://ptak.felk.cvut.cz/revisitop/revisitop1m/"
_INSTRE = "ftp://ftp.irisa.fr/local/texmex/corpus/instre/"

_OXFORD_IMAGES = (Remote(_OXFORD + "oxbuild_images-v1.tgz", "jpg"),)
_PARIS_IMAGES = (Remote(_PARIS + "paris_1-v1.tgz", "jpg"), Remote(_PARIS + "paris_2-v1.tgz", "jpg"))

ENTRIES: dict[str, DatasetEntry] = {e.key: e for e in (
    DatasetEntry("holidays", "benchmarks.holidays.load_holidays", holidays.LAYOUT, _holidays_files,
                 Recipe((Remote("ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg1.tar.gz"),
                         Remote("ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg2.tar.gz")), "jpg", 1491)),
    DatasetEntry("oxford5k", "benchmarks.oxford.load_oxford5k", oxford.LAYOUT, _buildings_files("oxford5k"),
                 Recipe(_OXFORD_IMAGES + (Remote(_OXFORD + "gt_files_170407.tgz", "gt_files", flatten=True),),
                        "jpg", 5063)),
    DatasetEntry("paris6k", "benchmarks.oxford.load_paris6k", oxford.LAYOUT, _buildings_files("paris6k"),
                 Recipe(_PARIS_IMAGES + (Remote(_PARIS + "paris_120310.tgz", "gt_files", flatten=True),),
                        "jpg", 6412)),
    DatasetEntry("roxford5k", "benchmarks.revisited.load_roxford5k", revisited.LAYOUT,
                 _revisited_files("roxford5k"),
                 Recipe(_OXFORD_IMAGES + (Remote(_REVISITOP + "roxford5k/gnd_roxford5k.pkl"),), "jpg", 5063)),
    DatasetEntry("rparis6k", "benchmarks.revisited.load_rparis6k", revisited.LAYOUT,
                 _revisited_files("rparis6k"),
                 Recipe(_PARIS_IMAGES + (Remote(_REVISITOP + "rparis6k/gnd_rparis6k.pkl"),), "jpg", 6412)),
    DatasetEntry("ukbench", "benchmarks.ukbench.load_ukbench", ukbench.LAYOUT, _ukbench_files,
                 Recipe((Remote("https://archive.org/download/ukbench/ukbench.zip"),), "full", 10200)),
    DatasetEntry("custom", "benchmarks.custom.load_custom", custom.LAYOUT, _custom_files),
    DatasetEntry("custom_csv", "benchmarks.custom.load_custom_csv", custom.CSV_LAYOUT,
                 _custom_csv_files),
    DatasetEntry("custom_h5", "benchmarks.custom.load_custom_h5", custom.H5_LAYOUT, _custom_h5_files),
    # the images (2.3 GB) extract into ROOT itself: INSTRE-S1/, INSTRE-S2/, INSTRE-M/
    DatasetEntry("instre", "benchmarks.instre.load_instre", instre.LAYOUT, _instre_files,
                 Recipe((Remote(_INSTRE + "instre.tar.gz"), Remote(_INSTRE + "gnd_instre.mat")))),
    DatasetEntry("gldv2", "benchmarks.gldv2.load_gldv2", gldv2.LAYOUT, _gldv2_files,
                 Recipe(manual=(
                     "GLDv2's retrieval data (the index, 761,757 images in 100 tar files, the test "
                     "set in 20, and the CSV files) is published by the Common "
                     "Visual Data Foundation: follow the download instructions of "
                     "https://github.com/cvdfoundation/google-landmark (index_*.tar into ROOT/index, "
                     "test_*.tar into ROOT/test, index.csv, test.csv and "
                     "retrieval_solution_v2.1.csv into ROOT), then check each archive's md5 "
                     "against the lists published beside them"))),
    DatasetEntry("demo", "benchmarks.demo.demo_dataset",
                 "  nothing: rendered from photos that ship inside pip packages"),
    DatasetEntry("revisitop1m", None, (
        "  ROOT/jpg/<a>/<b>/*.jpg      the 1M distractor images (100 archives): distractors_root ROOT/jpg\n"
        "  ROOT/revisitop1m.txt        their list, paths relative to jpg/: distractors_list"),
        recipe=Recipe(tuple(Remote(f"{_R1M}jpg/revisitop1m.{i}.tar.gz", "jpg") for i in range(1, 101))
                      + (Remote(_R1M + "revisitop1m.txt"),), images_in="jpg")),
    DatasetEntry("flickr100k", None, (
        "  ROOT/oxc1_100k/<tag>/*.jpg  the Flickr 100k images, read recursively: distractors_root ROOT"),
        recipe=Recipe(manual=(
            "the Flickr 100k distractors are distributed as 40 RAR parts "
            f"({_OXFORD}ox100k/oxc1_100k.part01.rar ... part40.rar), which neither Python's standard "
            "library nor deepagg's dependencies can extract: download them, extract part01 with unrar "
            "or 7-Zip into ROOT, and set dataset.distractors_root to ROOT"))),
)}
