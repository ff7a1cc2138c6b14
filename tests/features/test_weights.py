"""Weight sources: a local state-dict file, random, and the offline message of the torchvision API."""
import urllib.error

import pytest
import torch
import torchvision

from features.weights import load_weights


def test_local_file_is_loaded_strictly(tmp_path):
    src = torchvision.models.get_model("resnet18", weights=None)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    dst = torchvision.models.get_model("resnet18", weights=None)
    assert load_weights(dst, "torchvision", "resnet18", str(path)) == f"file:{path}"
    assert torch.equal(dst.conv1.weight, src.conv1.weight)


def test_missing_file_is_named(tmp_path):
    m = torchvision.models.get_model("resnet18", weights=None)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_weights(m, "torchvision", "resnet18", str(tmp_path / "nope.pth"))


def test_unknown_torchvision_weights_name_lists_the_known_ones():
    m = torchvision.models.get_model("resnet18", weights=None)
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        load_weights(m, "torchvision", "resnet18", "IMAGENET9K")


def test_offline_download_says_what_to_do(monkeypatch):
    def offline(self, *a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    m = torchvision.models.get_model("resnet18", weights=None)
    with pytest.raises(RuntimeError, match=r"backbone.weights=/path/to/file.pth"):
        load_weights(m, "torchvision", "resnet18", "IMAGENET1K_V1")


def test_random_weights():
    m = torchvision.models.get_model("resnet18", weights=None)
    assert load_weights(m, "torchvision", "resnet18", None) == "random"
