"""aggregators/functional.py: each formula against a closed form or a plain loop, and the same
formula on NumPy arrays and on torch tensors (one code for both)."""
import numpy as np
import pytest
import torch
from scipy.special import softmax as scipy_softmax
from scipy.stats import multivariate_normal

from aggregators import functional as F

RNG = np.random.default_rng(0)


def both(fn, *arrays, **kw):
    """fn on NumPy arrays and on torch tensors of the same values, the torch result as NumPy."""
    out_np = fn(*arrays, **kw)
    out_t = fn(*[torch.from_numpy(np.asarray(a)) for a in arrays], **kw)
    if isinstance(out_np, tuple):
        return out_np, tuple(t.numpy() for t in out_t)
    return out_np, out_t.numpy()


def test_signed_power_and_l2_by_hand():
    v = np.array([[-4.0, 9.0, 0.0], [0.0, 0.0, 0.0]])
    a, b = both(F.signed_power, v, alpha=0.5)
    np.testing.assert_array_equal(a, [[-2, 3, 0], [0, 0, 0]])
    np.testing.assert_array_equal(b, a)
    np.testing.assert_allclose(F.signed_power(v, 2.0), [[-16, 81, 0], [0, 0, 0]])
    a, b = both(F.l2_normalise, np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(a, [[0.6, 0.8], [0, 0]])                # zero rows stay zero
    np.testing.assert_array_equal(b, a)


def test_gmm_log_densities_equal_scipy_and_softmax_gives_posteriors():
    k, d = 3, 4
    w = np.array([0.2, 0.5, 0.3])
    mu, var = RNG.normal(size=(k, d)), RNG.uniform(0.5, 2.0, (k, d))
    x = RNG.normal(size=(6, d))
    expected = np.stack([np.log(w[j]) + multivariate_normal(mu[j], np.diag(var[j])).logpdf(x)
                         for j in range(k)], axis=1)
    a, b = both(F.gmm_log_densities, x, w, mu, var)
    np.testing.assert_allclose(a, expected, rtol=1e-12)
    np.testing.assert_allclose(b, expected, rtol=1e-12)
    a, b = both(F.softmax, expected)
    np.testing.assert_allclose(a, scipy_softmax(expected, axis=1), rtol=1e-12)
    np.testing.assert_allclose(b, a, rtol=1e-12)


def test_fisher_statistics_and_gradients_against_a_loop():
    n, k, d = 7, 2, 3
    x, gamma = RNG.normal(size=(n, d)), scipy_softmax(RNG.normal(size=(n, k)), axis=1)
    w, mu, var = np.array([0.4, 0.6]), RNG.normal(size=(k, d)), RNG.uniform(0.5, 2, (k, d))
    s0, s1, s2 = F.fisher_statistics(gamma, x)
    np.testing.assert_allclose(s0[:, 0], gamma.sum(axis=0))
    for j in range(k):
        np.testing.assert_allclose(s1[j], sum(gamma[i, j] * x[i] for i in range(n)))
        np.testing.assert_allclose(s2[j], sum(gamma[i, j] * x[i] ** 2 for i in range(n)))
    g_mu, g_var = F.fisher_gradients(s0, s1, s2, n, w, mu, var)
    for j in range(k):                     # Perronnin et al. 2010, eqs. (7)-(8), term by term
        u = (x - mu[j]) / np.sqrt(var[j])
        np.testing.assert_allclose(g_mu[j], (gamma[:, j, None] * u).sum(0) / (n * np.sqrt(w[j])))
        np.testing.assert_allclose(g_var[j], (gamma[:, j, None] * (u ** 2 - 1)).sum(0)
                                   / (n * np.sqrt(2 * w[j])))
    fv = F.fisher_layout(g_mu, g_var)
    np.testing.assert_array_equal(fv, np.r_[g_mu.ravel(), g_var.ravel()])
    batched = F.fisher_layout(*(torch.from_numpy(np.stack([g, g])) for g in (g_mu, g_var)))
    assert batched.shape == (2, 2 * k * d) and np.array_equal(batched[1].numpy(), fv)


def test_the_torch_branch_of_the_statistics_is_batched():
    x, gamma = RNG.normal(size=(2, 5, 3)), scipy_softmax(RNG.normal(size=(2, 5, 4)), axis=2)
    stats = F.fisher_statistics(torch.from_numpy(gamma), torch.from_numpy(x))
    for b in range(2):
        for got, want in zip(stats, F.fisher_statistics(gamma[b], x[b])):
            np.testing.assert_allclose(got[b].numpy(), want, rtol=1e-12)


def test_triangulate_gives_unit_residuals_and_keeps_a_zero_one():
    anchors = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    x = np.array([[3.0, 4.0], [0.0, 1.0]], np.float32)
    a, b = both(F.triangulate, x, anchors)
    r = -1 / np.sqrt(2)                                  # (0, 1) - (3, 4) = (-3, -3)
    np.testing.assert_allclose(a, [[0.6, 0.8, 0, 0], [0, 1, r, r]], atol=1e-7)
    np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("damping", [0.5, 1.0])
def test_democratic_weights_are_one_code_for_a_matrix_and_a_padded_stack(damping):
    phi = RNG.normal(size=(9, 5))
    single = F.democratic_weights(phi @ phi.T, 10, damping)
    stack = np.zeros((2, 12, 5))
    stack[0, :9] = phi
    lam = F.democratic_weights(torch.from_numpy(stack @ stack.transpose(0, 2, 1)), 10, damping)
    np.testing.assert_allclose(lam[0, :9].numpy(), single, rtol=1e-12)
    assert not lam[0, 9:].any() and not lam[1].any()                 # padding and empty: weight 0
