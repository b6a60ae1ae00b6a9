"""aihwkit's fields: their published defaults, and which of them a profile can express."""

from __future__ import annotations

from typing import Any

from hwprofiles.entries.pcm import (
    DRIFT_T0_S,
    PROGRAMMING_COEFFICIENTS_US,
    PROGRAMMING_G_MAX_REF_US,
    READ_Q_COEFFICIENT,
    READ_Q_EXPONENT,
    READ_Q_MAX,
    READ_T_READ_S,
)
from hwprofiles.entries.rram import NEURRAM_G_MAX_REF_US, NEURRAM_RELAXATION_US

# The published defaults of aihwkit's models and dataclasses, used when a field is absent.
# Its PCM-like model takes the published statistics the pcm_* entries hold by default.
PCM_PROG_COEFF = PROGRAMMING_COEFFICIENTS_US
PCM_PROG_G_MAX_REF_US = PROGRAMMING_G_MAX_REF_US
PCM_T_0_S = DRIFT_T0_S
PCM_Q_COEFFICIENT = READ_Q_COEFFICIENT
PCM_Q_EXPONENT = READ_Q_EXPONENT
PCM_Q_MAX = READ_Q_MAX
PCM_T_READ_S = READ_T_READ_S
PAIR_G_MAX_US = 25.0  # SinglePairConductanceConverter
CMO_G_MAX_US = 88.199997  # SingleDeviceConductanceConverter
CMO_G_MIN_US = 9.0
# ReRamCMONoiseModel's programming-noise coefficients in uS, constant first, keyed by
# acceptance range in percent.
CMO_COEFF_DICT: dict[float, tuple[float, float]] = {
    0.2: (0.00081107, 0.00106879),
    2.0: (0.0112185391, 0.01129027418),
}
CMO_ACCEPTANCE_RANGE = 2e-2
# ReRamWan2022NoiseModel's coefficients, constant first (aihwkit's order).
WAN2022_COEFF_DIC = {t: tuple(reversed(c)) for t, c in NEURRAM_RELAXATION_US.items()}
WAN2022_G_MAX_REF_US = NEURRAM_G_MAX_REF_US

FORWARD_DEFAULTS: dict[str, Any] = {
    "is_perfect": False,
    "inp_res": 1 / (2**7 - 2),
    "inp_bound": 1.0,
    "out_res": 1 / (2**9 - 2),
    "out_bound": 12.0,
    "out_noise": 0.06,
    "w_noise": 0.0,
    "w_noise_type": "NONE",
    "noise_management": "ABS_MAX",
}
MAPPING_DEFAULTS: dict[str, Any] = {
    "max_input_size": 512,
    "max_output_size": 512,
    "digital_bias": True,
    "weight_scaling_omega": 0.0,
    "weight_scaling_columnwise": False,
}

# forward fields a profile cannot express: accepted only at the value that turns them off.
FORWARD_NEUTRAL: dict[str, tuple[Any, str]] = {
    "inp_noise": (0.0, "input noise after the DAC has no profile kind"),
    "inp_sto_round": (False, "the profile's DAC rounds to nearest"),
    "out_sto_round": (False, "the profile's ADC rounds to nearest"),
    "inp_asymmetry": (0.0, "separate positive/negative input passes are not modelled"),
    "out_asymmetry": (0.0, "separate positive/negative input passes are not modelled"),
    "out_noise_std": (0.0, "output noise is the same at every output of a profile's tile"),
    "out_scale": (1.0, "a fixed digital output scale has no profile field"),
    "ir_drop": (0.0, "IR drop is not modelled by any built-in kind"),
    "out_nonlinearity": (0.0, "output non-linearity has no profile kind"),
    "out_nonlinearity_std": (0.0, "output non-linearity has no profile kind"),
    "slope_calibration": (0.0, "output non-linearity has no profile kind"),
    "v_offset_std": (0.0, "voltage offsets have no profile kind"),
    "r_series": (0.0, "series resistance has no profile kind"),
    "w_read_asymmetry_dtod": (0.0, "polarity-dependent reads have no profile kind"),
    "nm_thres": (0.0, "a noise-management threshold clips inputs in a way the profile's DAC does not"),
    "mv_type": ("ONE_PASS", "the profile computes each product in one analog pass"),
    "apply_xdep_pcm_read_noise": (False, "input-dependent PCM read noise has no profile kind"),
}
# forward fields with no effect once the neutral ones above are off.
FORWARD_INERT = {
    "ir_drop_g_ratio",
    "ir_drop_rs",
    "ir_drop_segments",
    "ir_drop_time_step_resolution_scale",
    "ir_drop_v_read",
    "ir_drop_integration_sum",
    "split_mode_bit_shift",
    "adc_quantization",
    "adc_frequency",
    "xdep_pcm_read_noise_scale",
    "v_offset_w_min",
    "max_bm_factor",
    "max_bm_res",
    "bm_test_negative_bound",
}
FORWARD_FIELDS = set(FORWARD_DEFAULTS) | {"bound_management"} | set(FORWARD_NEUTRAL) | FORWARD_INERT
MAPPING_TRAINING = {"weight_scaling_lr_compensation", "learn_out_scaling", "out_scaling_columnwise"}

# InferenceRPUConfig's fields: translated, fixed (init=False), or shaping training only.
TOP_FIELDS = {"type", "forward", "mapping", "noise_model", "drift_compensation", "pre_post", "t_inference"}
TOP_FIXED = {"device", "backward", "update", "tile_class", "tile_array_class", "simulator_tile_class"}
TOP_TRAINING = {"clip", "remap", "modifier"}
CONFIG_TYPES = {"InferenceRPUConfig", "TorchInferenceRPUConfig"}

# The noise models that translate, and the fields each has.
NOISE_MODELS = ("PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel", "ReRamWan2022NoiseModel", "ReRamCMONoiseModel")
PCM_FIELDS = {
    "type",
    "prog_coeff",
    "g_max",
    "t_read",
    "t_0",
    "prog_noise_scale",
    "read_noise_scale",
    "drift_scale",
    "prog_coeff_g_max_reference",
    "g_converter",
}
WAN2022_FIELDS = {"type", "coeff_dic", "g_max", "noise_scale", "coeff_g_max_reference", "g_converter"}
CMO_FIELDS = {
    "type",
    "coeff_dict",
    "g_max",
    "g_min",
    "prog_noise_scale",
    "read_noise_scale",
    "drift_scale",
    "decay_dict",
    "read_dict",
    "acceptance_range",
}
