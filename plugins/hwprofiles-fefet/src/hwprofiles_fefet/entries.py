"""What a profile says about FeFET noise: the entry models of this plugin's kinds.

No torch here: listing and validating profiles imports only these models. What the
kinds do to tensors is in :mod:`hwprofiles_fefet.noise`.

Notation: each weight sits on a differential pair of FeFETs; a device's conductance
``g`` is read as ``x = g / g_max`` in [0, 1] and, for a multi-level cell, as the
fraction ``p`` of its ferroelectric polarisation switched (0: unswitched, the
off state; 1: fully switched). Numbers marked *(unsure)* are guesses that match the
references qualitatively, not fits to one measured device.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles import NoiseEntry


class FefetMultilevel(NoiseEntry):
    """Multi-level FeFET cells with state-dependent device-to-device variation.

    Each device is written to the nearest of ``L = 2^bits_per_cell`` polarisation
    states, ``p = round(x (L - 1)) / (L - 1)``, and lands at
    ``g = max(p + sigma(p) z, 0) g_max``, ``z ~ N(0, 1)``, drawn once per chip, with
    ``sigma(p)^2 = sigma_edge^2 + p (1 - p) / n_domains``: an intermediate state is
    a partial switching of ``n_domains`` independent domains (binomial variance),
    so it varies more than the fully switched or unswitched states.
    ``noise_scale`` multiplies ``sigma``; at 0 the device is ideal (no levels either).
    """

    kind: Literal["fefet_multilevel"] = "fefet_multilevel"
    bits_per_cell: int = Field(
        3,
        ge=1,
        le=6,
        description="Bits stored per device: 2^bits polarisation states (3 bits: 8 states). "
        "Multi-level states by partial switching are shown by Jerry 2017 (5 bits in a large device); "
        "2-3 bits for scaled devices is a guess (unsure).",
    )
    n_domains: float = Field(
        50.0,
        gt=0,
        le=1e6,
        description="Effective number of independently switching ferroelectric domains per device; "
        "the partial-switching variance is p (1 - p) / n_domains in units of g_max^2. "
        "50 is guessed for a scaled device (unsure).",
    )
    sigma_edge: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Std at the unswitched and fully switched states (p = 0, 1), as a fraction of g_max (unsure).",
    )


class FefetRetention(NoiseEntry):
    """Retention loss: each device's state relaxes toward the middle state, linearly in log time.

    At ``t = t_inference_s`` after programming a device moves from ``g`` to
    ``g_mid + (g - g_mid) (1 - r)``, ``g_mid = middle g_max``,
    ``r = min(k log10(1 + t / t0), 1)``, with a per-device rate ``k ~ |N(rate, rate_std^2)|``
    drawn once per chip. A weight thus shrinks by ``1 - r`` on average, and the two
    devices of a pair relaxing at different rates add an offset. ``noise_scale``
    multiplies ``rate`` and ``rate_std``.
    """

    kind: Literal["fefet_retention"] = "fefet_retention"
    rate_per_decade: float = Field(
        0.02,
        ge=0,
        le=1,
        description="Mean fraction of the distance to the middle state lost per decade of time (unsure: "
        "chosen so that the memory window stays open for years, as Ni 2018 extrapolates).",
    )
    rate_std: float = Field(0.01, ge=0, le=1, description="Device-to-device std of that rate (unsure).")
    t0_s: float = Field(1.0, gt=0, le=1e6, description="Time after programming from which loss is counted, in s.")
    middle: float = Field(
        0.5,
        ge=0,
        le=1,
        description="The state the polarisation relaxes toward, as a fraction of g_max (0.5: the unpolarised "
        "middle of the window; unsure, imprint can shift it).",
    )
    compensation: bool = Field(
        False,
        description="Global compensation: rescale the outputs by a reference read taken right after programming "
        "(undoes the mean shrinking, as PCM drift compensation does).",
    )
