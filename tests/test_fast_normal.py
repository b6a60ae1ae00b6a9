"""The engine's normal generator is exact: standard normal in distribution, moments and
tails, independent across keys and neighbouring counters, and the compiled (numba) and
torch versions give the same bits."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from hwprofiles.noise import philox, rng

N_FAST = 10**7  # the numba backend; the torch backend is checked on fewer draws
N_TORCH = 10**6
N_SLOW = 10**8


@pytest.fixture
def forced(monkeypatch):
    def force(backend: str) -> None:
        if backend == "numba":
            pytest.importorskip("numba")
        monkeypatch.setenv(rng.BACKEND_ENV, backend)

    return force


def ks_pvalue(z: torch.Tensor) -> float:
    """Kolmogorov-Smirnov p-value of ``z`` against N(0, 1), in pieces (1e8 draws fit in memory)."""
    s = torch.sort(z).values
    n, d = len(s), 0.0
    for start in range(0, n, 10**7):
        cdf = torch.special.ndtr(s[start : start + 10**7].double())
        i = torch.arange(start, start + len(cdf), dtype=torch.float64)
        d = max(d, float(((i + 1) / n - cdf).max()), float((cdf - i / n).max()))
    return float(stats.kstwo.sf(d, n))


def moments_in_standard_errors(z: torch.Tensor) -> list[float]:
    """Mean, variance - 1, skewness and excess kurtosis, each over its standard error."""
    n = len(z)
    sums = torch.zeros(4, dtype=torch.float64)
    for start in range(0, n, 10**7):
        x = z[start : start + 10**7].double()
        sums += torch.stack([x.sum(), (x**2).sum(), (x**3).sum(), (x**4).sum()])
    m1, m2, m3, m4 = (sums / n).tolist()
    return [m1 * math.sqrt(n), (m2 - 1) / math.sqrt(2 / n), m3 / math.sqrt(15 / n), (m4 - 3) / math.sqrt(96 / n)]


def tail_deviations(z: torch.Tensor) -> dict[int, float]:
    """For k = 1..5 sigma: (count of |z| > k - n p) over the binomial standard deviation."""
    n, out = len(z), {}
    for k in range(1, 6):
        p = 2 * stats.norm.sf(k)
        count = sum(int((z[s : s + 10**7].abs() > k).sum()) for s in range(0, n, 10**7))
        out[k] = (count - n * p) / math.sqrt(n * p * (1 - p))
    return out


def check_standard_normal(z: torch.Tensor) -> None:
    assert ks_pvalue(z) > 1e-4
    assert all(abs(m) < 5 for m in moments_in_standard_errors(z)), moments_in_standard_errors(z)
    assert all(abs(d) < 5 for d in tail_deviations(z).values()), tail_deviations(z)


@pytest.mark.parametrize(("backend", "n"), [("numba", N_FAST), ("torch", N_TORCH)])
def test_draws_are_standard_normal(forced, backend, n):
    forced(backend)
    check_standard_normal(rng.normal(rng.draw_key(torch.Generator().manual_seed(1)), n))


@pytest.mark.slow
def test_a_hundred_million_draws_are_standard_normal_out_to_five_sigma(forced):
    forced("numba")
    z = rng.normal(rng.draw_key(torch.Generator().manual_seed(2)), N_SLOW)
    check_standard_normal(z)
    assert int((z.abs() > 5).sum()) > 0


def test_the_statistics_checks_catch_a_slightly_wrong_generator():
    z = rng.normal(12345, N_TORCH)
    assert max(abs(m) for m in moments_in_standard_errors(z * 1.01)) > 5  # 1% too wide
    clipped = z.clamp(-3.5, 3.5)
    assert abs(tail_deviations(clipped * 1.0)[4]) > 5  # a generator without tails
    assert ks_pvalue(z + 0.01) < 1e-4


def test_the_radius_keeps_the_exact_tail_mass():
    # P(r > R) = exp(-R^2/2) = u: count the radius words beyond R among the smallest words
    a = torch.arange(0, 1 << 21, dtype=torch.int64)
    z0, z1 = philox.box_muller(a, torch.full_like(a, 12345))
    r = torch.sqrt(z0.double() ** 2 + z1.double() ** 2)
    for radius in (4.0, 5.0, 5.5, 6.0, 6.5):
        expected = math.exp(-(radius**2) / 2) * 2**32
        assert abs(int((r > radius).sum()) - expected) <= max(2.0, 1e-4 * expected)


def test_extreme_words_give_finite_draws_beyond_six_sigma_and_never_a_zero_radius():
    a = torch.tensor([0, 1, 2**31, 2**32 - 257, 2**32 - 1])
    for b in (torch.zeros_like(a), torch.full_like(a, 2**32 - 1)):
        z0, z1 = philox.box_muller(a, b)
        radius = torch.sqrt(z0.double() ** 2 + z1.double() ** 2)
        assert torch.isfinite(radius).all() and (radius > 0).all()
    assert radius[0] == pytest.approx(math.sqrt(2 * 33 * math.log(2)), rel=1e-6)  # 6.76 sigma


def test_box_muller_matches_double_precision_on_every_quadrant():
    words = philox.philox_words(99, 0, 1 << 16)
    a, b = words[:, 0], words[:, 1]
    z0, z1 = philox.box_muller(a, b)
    u = (a.double() + 0.5) / 2**32
    angle = ((b >> 30).double() + (b & 0x3FFFFFFF).double() / 2**30 - 0.5) * math.pi / 2
    r = torch.sqrt(-2 * torch.log(u))
    torch.testing.assert_close(z0.double(), r * torch.cos(angle), rtol=0, atol=3e-6)
    torch.testing.assert_close(z1.double(), r * torch.sin(angle), rtol=0, atol=3e-6)


@pytest.mark.parametrize(
    "lag", [1, 2, 3, 4, philox.GROUP_COUNTERS, 2 * philox.GROUP_COUNTERS, 4 * philox.GROUP_COUNTERS]
)
def test_neighbouring_counters_and_words_are_uncorrelated(lag):
    z = rng.normal(2024, N_TORCH).double()
    limit = 5 / math.sqrt(N_TORCH)
    assert abs(float(torch.corrcoef(torch.stack([z[:-lag], z[lag:]]))[0, 1])) < limit
    z2 = z**2  # dependence that correlation of the values would miss (e.g. a shared radius)
    assert abs(float(torch.corrcoef(torch.stack([z2[:-lag], z2[lag:]]))[0, 1])) < limit


def test_neighbouring_keys_give_uncorrelated_draws():
    zs = torch.stack([rng.normal(key, N_TORCH // 4).double() for key in (0, 1, 2**32, 2**32 + 1)])
    r = torch.corrcoef(torch.cat([zs, zs**2]))
    assert (r - torch.eye(8, dtype=r.dtype)).abs().max() < 5 / math.sqrt(N_TORCH // 4)


@pytest.mark.parametrize("key", [0, 1, 0xDEADBEEF, 2**63 + 12345, 2**64 - 1])
@pytest.mark.parametrize("n", [1, 3, 1024, 1025, 50_001])
def test_numba_gives_the_bits_of_the_torch_version(forced, key, n):
    forced("numba")
    assert torch.equal(rng.normal(key, n), philox.normal(key, n))


def test_numba_philox_past_two_to_the_32_counters_is_the_spec():
    pytest.importorskip("numba")
    from hwprofiles.noise import philox_numba

    key, first = 0x0123456789ABCDEF, 2**32 - 100
    words = np.empty(4 * philox_numba.BLOCK, np.uint32)
    keys = np.array([k for pair in philox.round_keys(key) for k in pair], dtype=np.uint64)
    philox_numba._philox_block(words, keys, first, philox_numba.BLOCK)
    expected = philox.philox_words(key, first, philox_numba.BLOCK).T.flatten()
    assert np.array_equal(words.astype(np.int64), expected.numpy())


def test_numba_draws_do_not_depend_on_how_the_range_is_split(forced):
    forced("numba")
    from hwprofiles.noise import philox_numba

    whole = rng.normal(77, 20_000).numpy()
    pieces = np.empty(20_000, np.float32)
    for start, stop in [(0, 5), (5, 1100), (1100, 4096), (4096, 19_999), (19_999, 20_000)]:
        philox_numba.fill(pieces, pieces, 0.0, 0, 77, start, stop)
    assert np.array_equal(pieces, whole)


def test_importing_the_package_does_not_import_numba():
    import subprocess

    code = "import sys, hwprofiles, hwprofiles.noise.rng, hwprofiles.cli; print('numba' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_kernels_compiled_for_this_cpu_give_the_bits_of_the_torch_version():
    # In a fresh process the engine chooses numba's target itself (512-bit vectors on AVX-512).
    pytest.importorskip("numba")
    import subprocess

    code = (
        "import os, torch; from hwprofiles.noise import philox, rng; os.environ[rng.BACKEND_ENV] = 'numba';"
        "n = 100_003; same = all(torch.equal(rng.normal(k, n), philox.normal(k, n)) for k in (5, 2**64 - 1));"
        "print(same)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "True", out.stdout + out.stderr
