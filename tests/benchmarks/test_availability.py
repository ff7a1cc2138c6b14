"""missing_requirements: each missing file of a dataset config, with the way to get it, read from
the registry entry of the config's loader."""
from __future__ import annotations

from omegaconf import OmegaConf

from benchmarks.availability import missing_requirements


def _oxford105k(d):
    return {"_target_": "benchmarks.oxford.load_oxford5k", "name": "oxford105k", "root": str(d / "oxford5k"),
            "crop_queries": False, "exclude": [], "distractors_root": str(d / "flickr100k"),
            "distractors_list": None, "fit_on": "paris6k"}


def test_each_missing_file_says_how_to_get_it(tmp_path):
    d = tmp_path
    cfgs = [
        _oxford105k(d),
        {"_target_": "benchmarks.revisited.load_roxford5k", "name": "roxford5k_r1m",
         "root": str(d / "roxford5k"),
         "distractors_root": str(d / "revisitop1m" / "jpg"),
         "distractors_list": str(d / "revisitop1m" / "revisitop1m.txt")},
        {"_target_": "benchmarks.custom.load_custom", "name": "trip", "root": str(d / "trip"),
         "ground_truth": "gnd.json"},
    ]
    custom_hint = "see docs/datasets.md (your own data) for the layout and the ground-truth schema"
    assert missing_requirements(cfgs) == [
        f"dataset oxford105k: missing images at {d}/oxford5k/jpg; "
        f"get it with `deepagg-download oxford5k --root {d}/oxford5k`",
        f"dataset oxford105k: missing ground truth at {d}/oxford5k/gt_files; "
        f"get it with `deepagg-download oxford5k --root {d}/oxford5k`",
        f"dataset oxford105k: missing distractor images at {d}/flickr100k; "
        f"`deepagg-download flickr100k --root {d}/flickr100k` prints the manual steps",
        f"dataset roxford5k_r1m: missing images at {d}/roxford5k/jpg; "
        f"get it with `deepagg-download roxford5k --root {d}/roxford5k`",
        f"dataset roxford5k_r1m: missing ground truth at {d}/roxford5k/gnd_roxford5k.pkl; "
        f"get it with `deepagg-download roxford5k --root {d}/roxford5k`",
        f"dataset roxford5k_r1m: missing distractor images at {d}/revisitop1m/jpg; "
        f"get it with `deepagg-download revisitop1m --root {d}/revisitop1m`",
        f"dataset roxford5k_r1m: missing distractor list at {d}/revisitop1m/revisitop1m.txt; "
        f"get it with `deepagg-download revisitop1m --root {d}/revisitop1m`",
        f"dataset trip: missing images at {d}/trip; {custom_hint}",
        f"dataset trip: missing ground truth at {d}/trip/gnd.json; {custom_hint}",
    ]
    for sub in ("oxford5k/jpg", "oxford5k/gt_files", "flickr100k", "roxford5k/jpg", "revisitop1m/jpg",
                "trip"):
        (d / sub).mkdir(parents=True)
    for f in ("roxford5k/gnd_roxford5k.pkl", "revisitop1m/revisitop1m.txt", "trip/gnd.json"):
        (d / f).write_text("")
    assert missing_requirements(cfgs) == []


def test_a_rotation_file_is_written_not_downloaded(tmp_path):
    (tmp_path / "holidays").mkdir()
    cfg = {"_target_": "benchmarks.holidays.load_holidays", "name": "holidays_rotated",
           "root": str(tmp_path / "holidays"), "rotation_file": "rotations.txt"}
    assert missing_requirements([cfg]) == [
        f"dataset holidays_rotated: missing rotation file at {tmp_path}/holidays/rotations.txt; "
        "write it, one 'NAME DEGREES' line per sideways image (docs/datasets.md, Holidays rotation)"]


def test_resolved_dictconfig_and_defaults_of_the_loader(tmp_path):
    node = {"_target_": "benchmarks.revisited.load_rparis6k", "root": "${data_root}/rp"}
    cfg = OmegaConf.create({"data_root": str(tmp_path), "d": node}).d
    assert missing_requirements([cfg]) == [  # name and gnd_file from load_rparis6k's defaults
        f"dataset rparis6k: missing images at {tmp_path}/rp/jpg; "
        f"get it with `deepagg-download rparis6k --root {tmp_path}/rp`",
        f"dataset rparis6k: missing ground truth at {tmp_path}/rp/gnd_rparis6k.pkl; "
        f"get it with `deepagg-download rparis6k --root {tmp_path}/rp`"]


def test_configs_that_cannot_be_checked(tmp_path):
    assert missing_requirements([{"_target_": "benchmarks.demo.demo_dataset", "name": "demo"}]) == []
    # a loader of your own: importable, not registered, not checked
    own = {"_target_": "benchmarks.distractors.load_distractors", "root": "/nowhere"}
    assert missing_requirements([own]) == []
    assert missing_requirements([{"_target_": "nowhere.load", "name": "x"}]) == [
        "dataset x: unknown loader 'nowhere.load'"]
    assert missing_requirements([{"name": "y", "root": "/r"}]) == [
        "dataset y: the config names no loader (_target_)"]
    assert missing_requirements([{"_target_": "benchmarks.ukbench.load_ukbench", "name": "u"}]) == [
        "dataset u: the config sets no root (arguments of benchmarks.ukbench.load_ukbench)"]
