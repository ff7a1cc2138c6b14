"""The constraints tables every estimator checks its hyper-parameters against."""
import numpy as np
import pytest

from benchmarks.constraints import Boolean, Integer, OneOf, Real, check_constraints
from benchmarks.errors import ParameterError


@pytest.mark.parametrize("constraint,good,bad,reason", [
    (Integer(), [1, 7, np.int64(3)], [0, -1, 2.0, True, None, "3"], "must be a positive integer"),
    (Integer(0, optional=True), [0, None], [-1, 1.5], "must be null or an integer >= 0"),
    (Real(0, low_open=True), [1e-9, 3, np.float32(2)], [0, -1, float("inf"), float("nan"), True],
     "must be a number > 0"),
    (Real(0, low_open=True, allow_inf=True), [float("inf"), 2], [0, float("nan")],
     "must be a number > 0 (inf allowed)"),
    (Real(0), [0, 0.5], [-0.1], "must be a number >= 0"),
    (Real(0, low_open=True, optional=True), [None, 0.5], [0, "x"], "must be null or a number > 0"),
    (Real(0, 1, high_open=True), [0, 0.99], [1, -0.1], "must be in [0, 1)"),
    (Real(0, 1, low_open=True), [1, 0.5], [0, 1.01], "must be in (0, 1]"),
    (Boolean(), [True, False, np.bool_(True)], [0, 1, "true", None], "must be true or false"),
    (OneOf(("ssr", "none")), ["ssr", "none"], ["SSR", None], "expected one of ('ssr', 'none')"),
])
def test_each_constraint_accepts_and_refuses_by_hand(constraint, good, bad, reason):
    assert all(constraint.problem(v) is None for v in good)
    assert all(constraint.problem(v) == reason for v in bad)


def test_the_first_broken_parameter_is_named_with_its_owner():
    class Toy:
        constraints = {"k": Integer(0, note="0 = off"), "alpha": Real(0)}
        k, alpha = 2, -1
    with pytest.raises(ParameterError, match=r"^alpha=-1: must be a number >= 0 \(Toy\)$") as e:
        check_constraints(Toy(), Toy.constraints)
    assert e.value.param == "alpha" and e.value.owner == "Toy"
    Toy.k = -3
    with pytest.raises(ParameterError, match=r"k=-3: must be an integer >= 0 \(0 = off\)"):
        check_constraints(Toy(), Toy.constraints)


def test_settings_by_name_and_the_device_are_checked_by_the_same_tables(monkeypatch):
    from benchmarks.constraints import Device, check_device, check_values
    with pytest.raises(ParameterError, match=r"^batch_size=0: must be a positive integer \(FeatureSource\)$"):
        check_values({"batch_size": 0, "x": "ignored"}, {"batch_size": Integer()}, "FeatureSource")
    assert Device().problem("cpu") is None
    for bad in ("gpu", "cuda:x", "cuda:", 0, None):
        assert Device().problem(bad) == "expected cpu, cuda or cuda:N"
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParameterError, match=r"device='cuda': no CUDA device is available here"):
        check_device("cuda", "VLAD")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert Device().problem("cuda:1") is None and Device().problem("cuda") is None
    assert Device().problem("cuda:2") == "this machine has 2 CUDA device(s)"
