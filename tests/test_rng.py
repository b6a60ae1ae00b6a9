"""The noise engine's draws: the numbers must not depend on the threads or the backend,
must be standard normal, and combining them with an activation must not touch it."""

from __future__ import annotations

import threading

import pytest
import torch
from scipy import stats

import hwprofiles
from hwprofiles.errors import NoiseConfigError
from hwprofiles.lazy import optional_modules
from hwprofiles.noise import philox, rng
from hwprofiles.noise.base import StageContext, add_scaled
from hwprofiles.noise.gaussian import scale_by_noise

CPU = torch.device("cpu")
LARGE = (rng.PARALLEL_MIN_ELEMENTS * 2 + 123,)  # split over threads, not a multiple of a group


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


def test_a_draw_is_its_key_and_counters_whatever_its_size_and_shape():
    key = rng.draw_key(torch.Generator().manual_seed(4))
    long = rng.normal(key, 10_000)
    for n in (1, 5, 1023, 1024, 1025, 4097):
        assert torch.equal(rng.normal(key, n), long[:n])
    assert torch.equal(draw(4, shape=(10, 1000)).flatten(), long)


def test_large_draws_are_standard_normal_and_their_parts_independent():
    z = draw(3, dtype=torch.float64)
    assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    parts = z.chunk(4)
    r = torch.corrcoef(torch.stack([p[: len(parts[-1])] for p in parts]))
    assert (r - torch.eye(4, dtype=r.dtype)).abs().max() < 0.025  # 5 sigma at n ~ 65k


def test_float64_draws_are_the_float32_numbers():
    assert torch.equal(draw(9, shape=(3000,), dtype=torch.float64), draw(9, shape=(3000,)).double())


def test_other_dtypes_draw_with_torch():
    expected = torch.randn((100, 10), generator=torch.Generator().manual_seed(5), dtype=torch.bfloat16)
    assert torch.equal(draw(5, shape=(100, 10), dtype=torch.bfloat16), expected)


def test_the_backend_can_be_forced_and_a_wrong_name_is_named(monkeypatch):
    monkeypatch.setenv(rng.BACKEND_ENV, "torch")
    assert rng.backend() == "torch"
    monkeypatch.setenv(rng.BACKEND_ENV, "cuda")
    with pytest.raises(NoiseConfigError, match="HWPROFILES_RNG='cuda'.*numba, torch"):
        rng.backend()


def test_without_numba_the_torch_version_is_chosen_and_forcing_numba_names_the_extra(monkeypatch):
    monkeypatch.setitem(optional_modules, rng.NUMBA_KERNELS, None)  # as if numba could not be imported
    monkeypatch.delenv(rng.BACKEND_ENV, raising=False)
    assert rng.backend() == "torch"
    assert torch.equal(rng.normal(3, 5000), philox.normal(3, 5000))
    monkeypatch.setenv(rng.BACKEND_ENV, "numba")
    with pytest.raises(NoiseConfigError, match=r"needs numba.*pip install numba"):
        rng.backend()


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("multiplicative", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_drawing_and_adding_in_one_pass_gives_the_numbers_of_drawing_then_adding(
    monkeypatch, backend, multiplicative, dtype
):
    if backend == "numba":
        pytest.importorskip("numba")
    monkeypatch.setenv(rng.BACKEND_ENV, backend)
    y = torch.randn(3, 5000, dtype=dtype)
    kept = y.clone()
    with torch.no_grad():
        fused = rng.add_normal(y, 0.3, torch.Generator().manual_seed(2), multiplicative=multiplicative)
    z = rng.randn(y.shape, torch.Generator().manual_seed(2), device=CPU, dtype=dtype)
    separate = (scale_by_noise if multiplicative else add_scaled)(y, z, 0.3)
    assert torch.equal(y, kept)
    assert torch.equal(fused, separate)
    with_grad = y.clone().requires_grad_()
    through_autograd = rng.add_normal(with_grad, 0.3, torch.Generator().manual_seed(2), multiplicative=multiplicative)
    assert torch.equal(through_autograd.detach(), separate)
    # the gradient is that of the two steps through autograd, bit for bit
    upstream = torch.randn(y.shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    through_autograd.backward(upstream)
    two_steps = y.clone().requires_grad_()
    t = rng.randn(y.shape, torch.Generator().manual_seed(2), device=CPU, dtype=dtype) * 0.3  # z was overwritten
    (two_steps + two_steps * t if multiplicative else two_steps + t).backward(upstream)
    assert torch.equal(with_grad.grad, two_steps.grad)


@pytest.mark.parametrize("multiplicative", [False, True])
def test_a_noisy_training_step_runs_under_the_profiler_recording_shapes(multiplicative):
    # record_shapes casts an autograd function's int arguments to int64; keys reach 2^64 - 1
    from torch.profiler import ProfilerActivity, profile

    pytest.importorskip("numba")
    y = torch.randn(4, 300, requires_grad=True)
    seed = next(s for s in range(100) if rng.draw_key(torch.Generator().manual_seed(s)) >= 2**63)  # beyond int64
    generator = torch.Generator().manual_seed(seed)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True):
        rng.add_normal(y, 0.3, generator, multiplicative=multiplicative).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_stage_context_adds_noise_with_autograd_and_without():
    y = torch.randn(64, 32, requires_grad=True)
    ctx = StageContext(generator=torch.Generator().manual_seed(1), scale=1.0)
    out = ctx.scale_noise(y, 0.5)
    out.sum().backward()
    z = rng.randn(y.shape, torch.Generator().manual_seed(1), device=CPU, dtype=torch.float32)
    torch.testing.assert_close(y.grad, 1 + z * 0.5)
    with torch.no_grad():
        again = StageContext(generator=torch.Generator().manual_seed(1), scale=1.0).scale_noise(y, 0.5)
    assert torch.equal(again, out.detach())


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


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_every_layer_noise_on_large_activations_is_reproducible(threads, monkeypatch, backend):
    if backend == "numba":
        pytest.importorskip("numba")
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU())
    x = torch.randn(16, 1, 64, 64)  # 8 x 16 x 64 x 64 = 524288 outputs: the threaded path
    noisy = hwprofiles.to_noisy(model, "gaussian-additive").eval()
    outs = []
    for n, forced in ((1, backend), (2, backend), (2, "torch")):
        monkeypatch.setenv(rng.BACKEND_ENV, forced)
        torch.set_num_threads(n)
        hwprofiles.program(noisy, seed=11)
        with torch.no_grad():
            outs.append(noisy(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])
    with torch.no_grad():
        residual = (outs[0] - model(x + 0.0)).flatten()
    assert residual.std() > 0.05  # noise was added


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    [  # Random123's known-answer vectors for philox4x32_10
        ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
        ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
        (
            (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
            (0xA4093822, 0x299F31D0),
            (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
        ),
    ],
)
def test_the_bits_are_philox4x32_10(counter, key, expected):
    words = philox.philox(tuple(torch.tensor([c]) for c in counter), key[0] | (key[1] << 32))
    assert tuple(int(w) for w in words) == expected


def test_counters_are_the_element_index_and_key_words_are_low_then_high():
    key = 0x0123456789ABCDEF
    words = philox.philox_words(key, (5 << 32) + 7, 1)[0]
    expected = philox.philox(tuple(torch.tensor([c]) for c in (7, 5, 0, 0)), key)
    assert words.tolist() == [int(w) for w in expected]


@pytest.mark.parametrize("numel", [1, rng.PARALLEL_MIN_ELEMENTS + 1, 10 * rng.PARALLEL_MIN_ELEMENTS + 7])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_in_parallel_covers_every_element_once(numel, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seen = torch.zeros(numel, dtype=torch.int32)
        lock = threading.Lock()

        def fill(start: int, stop: int) -> None:
            with lock:
                seen[start:stop] += 1

        rng.in_parallel(numel, fill)
    finally:
        torch.set_num_threads(before)
    assert bool((seen == 1).all())


def test_a_failing_piece_fails_the_whole_draw():
    def fill(start: int, stop: int) -> None:
        if start > 0:
            raise RuntimeError("piece failed")

    with pytest.raises(RuntimeError, match="piece failed"):
        rng.in_parallel(8 * rng.PARALLEL_MIN_ELEMENTS, fill)
