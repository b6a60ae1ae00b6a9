"""Large noise draws are split over threads: the numbers must not depend on the threads,
must still be standard normal, and combining them with an activation must not touch it."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import hwprofiles
from hwprofiles.noise import rng
from hwprofiles.noise.base import add_scaled
from hwprofiles.noise.gaussian import scale_by_noise

CPU = torch.device("cpu")
LARGE = (rng.PARALLEL_MIN_ELEMENTS + 123,)  # above the threshold, not a multiple of the chunks


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def draw(seed: int, shape=LARGE, dtype=torch.float32) -> torch.Tensor:
    return rng.randn(shape, torch.Generator().manual_seed(seed), device=CPU, dtype=dtype)


def test_same_seed_same_numbers_with_any_number_of_threads(threads):
    torch.set_num_threads(1)
    one = draw(7)
    torch.set_num_threads(2)
    assert torch.equal(draw(7), one)
    assert not torch.equal(draw(8), one)


def test_large_draws_are_standard_normal_and_chunks_independent():
    z = draw(3, dtype=torch.float64)
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    chunks = z.chunk(rng.CHUNKS)
    r = torch.corrcoef(torch.stack([c[: len(chunks[-1])] for c in chunks]))
    assert (r - torch.eye(rng.CHUNKS, dtype=r.dtype)).abs().max() < 0.02  # 4 sigma at n ~ 131k


def test_small_draws_are_plain_torch_randn():
    g = torch.Generator().manual_seed(5)
    expected = torch.randn((100, 10), generator=torch.Generator().manual_seed(5))
    assert torch.equal(rng.randn((100, 10), g, device=CPU, dtype=torch.float32), expected)


@pytest.mark.parametrize("combine", [add_scaled, scale_by_noise])
def test_combining_without_autograd_leaves_the_activation_alone(combine):
    y = torch.randn(1000)
    kept = y.clone()
    noise = torch.randn(1000)
    with torch.no_grad():
        out = combine(y, noise.clone(), 0.5)
    assert torch.equal(y, kept)
    expected = y + 0.5 * noise if combine is add_scaled else y * (1 + 0.5 * noise)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("combine", [add_scaled, scale_by_noise])
def test_combining_with_autograd_keeps_the_gradient(combine):
    y = torch.randn(50, requires_grad=True)
    noise = torch.randn(50)
    combine(y, noise, 0.5).sum().backward()
    expected = torch.ones(50) if combine is add_scaled else 1 + 0.5 * noise
    torch.testing.assert_close(y.grad, expected)


def test_every_layer_noise_on_large_activations_is_reproducible(threads):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU())
    x = torch.randn(16, 1, 64, 64)  # 8 x 16 x 64 x 64 = 524288 outputs: the threaded path
    noisy = hwprofiles.to_noisy(model, "gaussian-additive").eval()
    outs = []
    for n in (1, 2):
        torch.set_num_threads(n)
        hwprofiles.program(noisy, seed=11)
        with torch.no_grad():
            outs.append(noisy(x))
    assert torch.equal(outs[0], outs[1])
    with torch.no_grad():
        residual = (outs[0] - model(x + 0.0)).flatten()
    assert residual.std() > 0.05  # noise was added
