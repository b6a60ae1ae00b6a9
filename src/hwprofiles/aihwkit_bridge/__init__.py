"""Translate IBM aihwkit inference settings into hardware profiles, and back.

aihwkit describes an analog inference tile with an ``InferenceRPUConfig``: the
periphery (``forward``: DAC, ADC, output and weight noise), the tiling and weight
scaling (``mapping``), a device noise model (``noise_model``) and drift
compensation. :func:`from_aihwkit` reads such a configuration written out as a
nested dict (JSON or YAML, e.g. from ``dataclasses.asdict``) and builds the profile
that expresses it; :func:`to_aihwkit` writes a profile in those terms. aihwkit need
not be installed: only the dict is read.

Every field is either translated, checked to be at a value with no effect, or
refused with a reason; with ``lenient=True`` refused fields are dropped and listed
as warnings instead. Fields that translate with a rounding or a documented
difference of behaviour are listed as notes. ``docs/aihwkit-bridge.md`` holds the
whole table and the reasons.

    >>> from hwprofiles.aihwkit_bridge import from_aihwkit, to_aihwkit
    >>> import hwprofiles
    >>> config = to_aihwkit(hwprofiles.load_profile("pcm-joshi2020"))
    >>> config["noise_model"]["type"]
    'PCMLikeNoiseModel'
    >>> from_aihwkit(config, name="pcm-again").profile.kinds()
    ['pcm_programming', 'pcm_drift', 'pcm_read_1f', 'weight_read_noise', 'output_noise']
"""

from __future__ import annotations

from hwprofiles.aihwkit_bridge.fields import (
    CMO_ACCEPTANCE_RANGE,
    CMO_COEFF_DICT,
    CMO_G_MAX_US,
    CMO_G_MIN_US,
    FORWARD_DEFAULTS,
    MAPPING_DEFAULTS,
    PAIR_G_MAX_US,
    PCM_PROG_COEFF,
    PCM_PROG_G_MAX_REF_US,
    PCM_Q_COEFFICIENT,
    PCM_Q_EXPONENT,
    PCM_Q_MAX,
    WAN2022_COEFF_DIC,
    WAN2022_G_MAX_REF_US,
)
from hwprofiles.aihwkit_bridge.reading import AIHWKIT_REFERENCE, Translation, from_aihwkit, read_aihwkit_file
from hwprofiles.aihwkit_bridge.writing import export_aihwkit, to_aihwkit

__all__ = [
    "AIHWKIT_REFERENCE",
    "CMO_ACCEPTANCE_RANGE",
    "CMO_COEFF_DICT",
    "CMO_G_MAX_US",
    "CMO_G_MIN_US",
    "FORWARD_DEFAULTS",
    "MAPPING_DEFAULTS",
    "PAIR_G_MAX_US",
    "PCM_PROG_COEFF",
    "PCM_PROG_G_MAX_REF_US",
    "PCM_Q_COEFFICIENT",
    "PCM_Q_EXPONENT",
    "PCM_Q_MAX",
    "WAN2022_COEFF_DIC",
    "WAN2022_G_MAX_REF_US",
    "Translation",
    "export_aihwkit",
    "from_aihwkit",
    "read_aihwkit_file",
    "to_aihwkit",
]
