"""deepagg-store: list, verify (and set aside), clean."""
import numpy as np
import pytest

from chunk_sources import ListedImages
from experiments.store_app import main
from features import LocalFeatures
from features.store import FeatureStore


def _fill(root):
    def chunk(spec):
        return [LocalFeatures.from_map(np.full((3, 2, 2), i, np.float32)) for i in range(spec.lo, spec.hi)]
    names = [f"im{i}" for i in range(5)]
    FeatureStore(root, "float32", chunk_size=2).get("toy", ListedImages(names, chunk),
                                                      {"kind": "deep", "name": "x"}, progress=False)
    return next((root / "toy").iterdir())


def test_verify_finds_a_damaged_chunk_sets_it_aside_and_clean_deletes_it(tmp_path, capsys):
    entry = _fill(tmp_path)
    assert main(["list", "--root", str(tmp_path)]) == 0
    assert "5 images  3 chunks" in capsys.readouterr().out
    assert main(["verify", "--root", str(tmp_path)]) == 0
    assert "3 chunk(s) checked, 0 bad" in capsys.readouterr().out
    desc = entry / "chunk_00001" / "descriptors.npy"
    raw = bytearray(desc.read_bytes())
    raw[-1] ^= 0xFF
    desc.write_bytes(bytes(raw))
    assert main(["verify", "--root", str(tmp_path), "--set-aside"]) == 1
    out = capsys.readouterr().out
    assert "chunk_00001: descriptors.npy does not match its checksum" in out and "moved to" in out
    assert not (entry / "chunk_00001").exists() and (entry / "set_aside").is_dir()
    assert main(["clean", "--root", str(tmp_path)]) == 0
    assert not (entry / "set_aside").exists()
    assert main(["verify", "--root", str(tmp_path / "nowhere")]) == 2


def test_help_says_which_store_is_used_without_markup(capsys, monkeypatch):
    monkeypatch.delenv("DEEPAGG_STORE", raising=False)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text and "$DEEPAGG_STORE" in text and ".cache/deepagg/store" in text
    assert "every process of this account" in text
