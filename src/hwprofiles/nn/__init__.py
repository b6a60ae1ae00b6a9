"""Noisy twins of torch layers, the model converter, and QAT quantizers.

The converters are re-exported here (and from :mod:`hwprofiles`); each twin family
lives in its own module (:mod:`~hwprofiles.nn.layers`, :mod:`~hwprofiles.nn.attention`,
:mod:`~hwprofiles.nn.recurrent`, :mod:`~hwprofiles.nn.qat`), and all of them are swapped
in and out by :func:`~hwprofiles.nn.swap.swap_modules`.
"""

from hwprofiles.nn.convert import (
    calibrate,
    conversion_report,
    noise_sites,
    profile_of,
    program,
    set_noise_scale,
    set_profile,
    to_clean,
    to_noisy,
)
from hwprofiles.nn.qat import bake_qat, from_qat, to_qat
from hwprofiles.nn.swap import TwinMixin, swap_modules

__all__ = [
    "TwinMixin",
    "bake_qat",
    "calibrate",
    "conversion_report",
    "from_qat",
    "noise_sites",
    "profile_of",
    "program",
    "set_noise_scale",
    "set_profile",
    "swap_modules",
    "to_clean",
    "to_noisy",
    "to_qat",
]
