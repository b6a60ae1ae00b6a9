"""hwprofiles: harden neural networks against the noise of analog AI hardware.

Describe a device once as a profile; make any PyTorch model its noisy twin;
train with noise injection; evaluate over many simulated chip instances.

    >>> import hwprofiles
    >>> "pcm-joshi2020" in hwprofiles.list_profiles()
    True

The tensor parts (``to_noisy``, ``program``, ...) import torch on first use, so
that listing and validating profiles stays quick.
"""

from __future__ import annotations

from hwprofiles.cpu_tuning import shorten_openmp_spin
from hwprofiles.entries.base import NoiseEntry, VarianceAware
from hwprofiles.errors import (
    CheckpointError,
    ConversionError,
    DataNotFoundError,
    DuplicateNoiseModelError,
    HwProfilesError,
    NoiseConfigError,
    NotCalibratedError,
    PluginError,
    PluginWarning,
    ProfileError,
    UnknownNoiseModelError,
    UnknownProfileError,
    YamlError,
)
from hwprofiles.hookspecs import hookimpl
from hwprofiles.lazy import lazy_module
from hwprofiles.plugins import get_plugin_manager
from hwprofiles.profiles import (
    ADC,
    DAC,
    Mapping,
    Profile,
    Tile,
    add_profile_dirs,
    dump_profile,
    list_profiles,
    load_profile,
    parse_profile,
    profile_json_schema,
)
from hwprofiles.registry import get_noise_model, list_noise_models, register_noise_model
from hwprofiles.version import __version__

shorten_openmp_spin()  # none of the above imports torch, whose OpenMP reads this once

# name -> module holding it; imported on first attribute access (PEP 562)
_LAZY = {
    "to_noisy": "hwprofiles.nn.convert",
    "to_clean": "hwprofiles.nn.convert",
    "set_profile": "hwprofiles.nn.convert",
    "program": "hwprofiles.nn.convert",
    "calibrate": "hwprofiles.nn.convert",
    "recalibrate_batchnorm": "hwprofiles.nn.batchnorm",
    "to_qat": "hwprofiles.nn.qat",
    "from_qat": "hwprofiles.nn.qat",
    "NoiseKind": "hwprofiles.noise.base",
    "noise_sites": "hwprofiles.nn.convert",
    "set_noise_scale": "hwprofiles.nn.convert",
    "profile_of": "hwprofiles.nn.convert",
    "conversion_report": "hwprofiles.nn.convert",
    "ConversionReport": "hwprofiles.nn.report",
    "FloatLayerWarning": "hwprofiles.nn.report",
    "get_model": "hwprofiles.models",
    "list_models": "hwprofiles.models",
    "register_model": "hwprofiles.models",
    "load_dataset": "hwprofiles.data",
    "evaluate": "hwprofiles.eval.chips",
    "ResultsStore": "hwprofiles.results",
    "EvaluationResult": "hwprofiles.eval.chips",
}

__all__ = [
    "ADC",
    "DAC",
    "CheckpointError",
    "ConversionError",
    "DataNotFoundError",
    "DuplicateNoiseModelError",
    "HwProfilesError",
    "Mapping",
    "NoiseConfigError",
    "NotCalibratedError",
    "NoiseEntry",
    "PluginError",
    "PluginWarning",
    "Profile",
    "ProfileError",
    "Tile",
    "UnknownNoiseModelError",
    "UnknownProfileError",
    "VarianceAware",
    "YamlError",
    "__version__",
    "add_profile_dirs",
    "dump_profile",
    "get_noise_model",
    "get_plugin_manager",
    "hookimpl",
    "list_noise_models",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_json_schema",
    "register_noise_model",
    *_LAZY,
]


__getattr__, __dir__ = lazy_module(__name__, _LAZY, globals())
