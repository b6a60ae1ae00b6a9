"""Sweeps: accuracy against noise scale, against time since programming, and per layer.

The robustness figure is the *midpoint*: the noise level at which accuracy falls
halfway from the clean accuracy to chance, interpolated linearly in log(noise
scale) between the two grid points around it (the Walking Noise study's metric).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from hwprofiles.eval.chips import Summary, Trained, evaluate_checkpoint
from hwprofiles.profiles import Profile
from hwprofiles.results import ResultsStore

# Time since programming: 1 s, 1 h, 1 day, 1 month (30 d), 1 year (365 d).
DRIFT_TIMES_S = (1.0, 3600.0, 86_400.0, 2_592_000.0, 31_536_000.0)


def log_grid(low: float = 1e-2, high: float = 1e2, points: int = 17) -> list[float]:
    """``points`` values spaced evenly in log from ``low`` to ``high`` (the study: 1e-2..1e2, 17)."""
    if points < 2:
        return [float(low)]
    return [float(v) for v in np.logspace(math.log10(low), math.log10(high), points)]


def midpoint(scales: Sequence[float], accuracies: Sequence[float], clean: float, chance: float) -> float | None:
    """The noise scale where accuracy first falls below halfway from ``clean`` to ``chance``.

    Interpolated linearly in log(scale) between the last grid point at or above the
    half level and the first below it. ``None`` when the curve never falls that far
    (or starts below it).

    >>> round(midpoint([0.1, 1.0, 10.0], [0.9, 0.7, 0.1], clean=0.9, chance=0.1), 3)
    1.585
    """
    level = chance + (clean - chance) / 2.0
    for i in range(len(scales) - 1):
        a0, a1 = accuracies[i], accuracies[i + 1]
        if a0 >= level > a1:
            l0, l1 = math.log10(scales[i]), math.log10(scales[i + 1])
            frac = (a0 - level) / (a0 - a1)
            return 10 ** (l0 + frac * (l1 - l0))
    return None


def sweep_noise(
    trained: Trained, profile: Profile, scales: Sequence[float], loaders: Any, *, samples: int,
    store: ResultsStore | None, test_set: str, on_sample: Callable[[], None] | None = None, device: str = "cpu",
) -> list[tuple[float, Summary]]:
    """Accuracy at each noise scale."""
    return [
        (s, evaluate_checkpoint(trained, profile, loaders, samples=samples, noise_scale=s, store=store,
                                test_set=test_set, on_sample=on_sample, device=device))
        for s in scales
    ]


def sweep_time(
    trained: Trained, profile: Profile, times_s: Sequence[float], loaders: Any, *, samples: int,
    store: ResultsStore | None, test_set: str, on_sample: Callable[[], None] | None = None, device: str = "cpu",
) -> list[tuple[float, Summary]]:
    """Accuracy at each time since programming (drifting profiles)."""
    return [
        (t, evaluate_checkpoint(trained, profile, loaders, samples=samples, t_inference_s=t, store=store,
                                test_set=test_set, on_sample=on_sample, device=device))
        for t in times_s
    ]


def sweep_layers(
    trained: Trained, profile: Profile, loaders: Any, *, samples: int, store: ResultsStore | None,
    test_set: str, on_sample: Callable[[], None] | None = None, device: str = "cpu",
) -> dict[str, Summary]:
    """Accuracy with noise in one layer at a time (Walking Noise), at the profile's noise scale."""
    from hwprofiles.nn.convert import noisy_layer_names

    return {
        layer: evaluate_checkpoint(trained, profile, loaders, samples=samples, store=store, test_set=test_set,
                                   only_layer=layer, on_sample=on_sample, device=device)
        for layer in noisy_layer_names(trained.model, profile)
    }
