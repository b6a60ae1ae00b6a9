"""Turn a float model into its noisy twin under a profile, and back.

>>> import torch.nn as nn, hwprofiles
>>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
>>> import torch
>>> batches = [torch.randn(16, 8) for _ in range(4)]  # training inputs
>>> noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=batches)
>>> _ = hwprofiles.program(noisy, seed=1, t_inference_s=3600)  # one chip instance
>>> clean = hwprofiles.to_clean(noisy)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn as nn

from hwprofiles.nn.attention import NoisyMultiheadAttention
from hwprofiles.nn.calibration import analog_products, calibrate
from hwprofiles.nn.hooks import EVERY_LAYER_TYPES, INPUT, add_model_hooks, noise_sites, remove_model_hooks
from hwprofiles.nn.layers import LAYER_TWINS
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.recurrent import NoisyGRU, NoisyLSTM, NoisyRNN
from hwprofiles.nn.report import (
    EXCLUDED,
    MATRIX_TYPES,
    PLUGIN,
    SUBCLASS,
    UNSUPPORTED,
    ConversionReport,
    Converted,
    LeftFloat,
)
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.swap import excluded, swap_modules
from hwprofiles.nn.twin import NoisyTwin
from hwprofiles.profiles import Profile, load_profile

DEFAULT_TWINS: dict[type[nn.Module], type[NoisyTwin]] = {
    **LAYER_TWINS,
    nn.MultiheadAttention: NoisyMultiheadAttention,
    nn.RNN: NoisyRNN,
    nn.LSTM: NoisyLSTM,
    nn.GRU: NoisyGRU,
}
"""The float types :func:`to_noisy` converts (exact types), and their twins."""

_STATE = "_hwprofiles"  # the attribute of the root module holding its ModelState


class ModelState:
    """What :func:`to_noisy` records on a converted model: its profile and exclusions."""

    def __init__(self, profile: Profile, exclude: frozenset[str]) -> None:
        self.profile = profile
        self.exclude = exclude


def model_state(model: nn.Module) -> ModelState:
    """The :class:`ModelState` of a converted model.

    Raises:
        TypeError: ``model`` was not made by :func:`to_noisy`.
    """
    state = getattr(model, _STATE, None)
    if not isinstance(state, ModelState):
        raise TypeError("this model was not made by hwprofiles.to_noisy")
    return state


def profile_of(model: nn.Module) -> Profile:
    """The profile a converted model runs under (with its current noise scale).

    Raises:
        TypeError: ``model`` was not made by :func:`to_noisy`.

    >>> import torch.nn as nn, hwprofiles
    >>> noisy = hwprofiles.to_noisy(nn.Sequential(nn.Linear(4, 2)), "gaussian-additive")
    >>> hwprofiles.nn.profile_of(hwprofiles.set_noise_scale(noisy, 0.5)).noise_scale
    0.5
    """
    return model_state(model).profile


def _resolve(profile: Profile | str, noise_scale: float | None = None) -> Profile:
    profile = load_profile(profile)
    return profile if noise_scale is None else profile.with_noise_scale(noise_scale)


def _float_reason(module: nn.Module, twins: dict) -> tuple[str, str]:
    """Why a matrix layer without a twin type stays float: (category, text)."""
    for float_type, twin_type in twins.items():
        if isinstance(module, float_type):
            sub = type(module).__name__
            return SUBCLASS, (
                f"a subclass of {float_type.__name__} that the mapping does not name (it may compute "
                f"something else); if it computes the same product, map it: "
                f"mapping={{{sub}: {twin_type.__name__}}}"
            )
    return UNSUPPORTED, "no noisy twin for this type (give one with mapping= or a plugin's hwprofiles_swap_layer)"


def _convert(
    model: nn.Module, profile: Profile, exclude: frozenset[str], twins: dict, options: dict[str, Any], *, dry: bool
) -> tuple[nn.Module, ConversionReport]:
    """Walk ``model`` once: swap (unless ``dry``) and report every matrix layer."""
    from hwprofiles.plugins import get_plugin_manager

    hook = get_plugin_manager().hook.hwprofiles_swap_layer
    report = ConversionReport(profile.name)

    def convert(name: str, module: nn.Module) -> nn.Module | None:
        if isinstance(module, (NoisyTwin, AnalogMVM)):
            return module  # a twin already: it and its children stay as they are
        matrix = isinstance(module, MATRIX_TYPES)
        if excluded(name, exclude):
            if matrix:
                report.left_float.append(LeftFloat(name, type(module), EXCLUDED, "excluded (exclude=)"))
            return None
        twin = hook(module=module, profile=profile, name=name)
        if twin is module:
            if matrix:
                report.left_float.append(
                    LeftFloat(name, type(module), PLUGIN, "kept float by a plugin (hwprofiles_swap_layer)")
                )
            return None
        if twin is None:
            twin_type = twins.get(type(module))  # exact type
            if twin_type is None:
                if matrix:
                    report.left_float.append(LeftFloat(name, type(module), *_float_reason(module, twins)))
                return None
            is_noisy = issubclass(twin_type, NoisyTwin)
            why = twin_type.unsupported(module) if is_noisy else None
            if why is not None:
                report.left_float.append(LeftFloat(name, type(module), UNSUPPORTED, why))
                return None
            report.converted.append(Converted(name, type(module), twin_type))
            for sub, float_type, sub_twin in twin_type.inner_twins(module) if is_noisy else []:
                report.converted.append(Converted(f"{name}.{sub}" if name else sub, float_type, sub_twin))
            if not dry:
                kwargs = options if issubclass(twin_type, NoisyMultiheadAttention) else {}
                twin = twin_type.from_float(module, NoiseSite(profile, name), **kwargs)
        else:
            report.converted.append(Converted(name, type(module), type(twin)))
        return module if dry else twin  # dry: nothing is swapped, and nothing inside is visited

    return swap_modules(model, convert), report


def conversion_report(
    model: nn.Module,
    profile: Profile | str,
    *,
    exclude: Iterable[str] = (),
    mapping: dict[type[nn.Module], type[nn.Module]] | None = None,
) -> ConversionReport:
    """What :func:`to_noisy` would do to ``model``, without converting it.

    Lists each matrix layer (linear, convolution, attention, recurrent, bilinear) as
    converted (float type -> twin type) or left float, with the reason: excluded by the
    user, kept float by a plugin, a subclass the mapping does not name, or a type (or
    configuration) without a twin.

    >>> import torch.nn as nn, hwprofiles
    >>> report = hwprofiles.conversion_report(nn.Sequential(nn.Linear(4, 2), nn.GRUCell(2, 2)), "pcm-joshi2020")
    >>> [(c.name, c.twin_type.__name__) for c in report.converted], [f.name for f in report.left_float]
    ([('0', 'NoisyLinear')], ['1'])
    """
    twins = {**DEFAULT_TWINS, **(mapping or {})}
    return _convert(model, _resolve(profile), frozenset(exclude), twins, {}, dry=True)[1]


def to_noisy(
    model: nn.Module,
    profile: Profile | str,
    *,
    exclude: Iterable[str] = (),
    mapping: dict[type[nn.Module], type[nn.Module]] | None = None,
    inplace: bool = False,
    calibration: Iterable[torch.Tensor] | None = None,
    analog_attention: bool = False,
    strict: bool = False,
    report: bool = False,
) -> Any:
    """The noisy twin of ``model`` under ``profile``.

    Swaps every matrix layer it has a twin for (exact types: ``nn.Linear``,
    ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``, ``nn.MultiheadAttention``,
    ``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) for noisy twins that share the parameters; a bare
    layer gives its twin. Under ``placement: every_layer`` it also adds output noise after
    the input and after every normalisation, activation and pooling layer. A plugin's
    ``hwprofiles_swap_layer`` hook may supply the twin of any module. Device, dtype and
    hooks are kept. A matrix layer left float for any reason but ``exclude`` (a subclass
    the mapping does not name, a type without a twin) gives one
    :class:`~hwprofiles.nn.report.FloatLayerWarning` naming them all.

    Under a profile whose DAC is ``bound_mode: calibrated`` the model must be calibrated
    (``calibration=`` here, or :func:`calibrate`) before it is evaluated.

    Args:
        model: the float model, or a single layer.
        profile: a :class:`Profile`, a profile name or a profile file path.
        exclude: qualified module names (and their children) left float and noise-free;
            ``"<input>"`` leaves the network input noise-free under every-layer placement.
        mapping: ``{float type: twin type}`` entries added to (or overriding) :data:`DEFAULT_TWINS`.
        inplace: convert ``model`` itself instead of a deep copy (a bare layer is never
            converted in place: its twin is returned, sharing its parameters).
        calibration: batches of (training) inputs: calibrate the DAC input bounds on them
            right after conversion (see :func:`calibrate`).
        analog_attention: also compute attention's ``Q K^T`` and ``softmax V`` products on the
            chip (they multiply activations and are digital on most chips).
        strict: raise :class:`~hwprofiles.ConversionError` instead of warning when a matrix
            layer stays float unasked.
        report: also return the :class:`~hwprofiles.nn.report.ConversionReport`.

    Returns:
        The converted model (and the report, with ``report=True``); call :func:`program`
        to draw a chip instance.

    Raises:
        ConversionError: with ``strict=True``, a matrix layer would stay float.
        ValueError: a calibration batch holds NaN or inf.

    >>> import torch.nn as nn, hwprofiles
    >>> noisy, report = hwprofiles.to_noisy(nn.Linear(4, 2), "gaussian-additive", report=True)
    >>> type(noisy).__name__, [c.name for c in report.converted]
    ('NoisyLinear', [''])
    """
    profile = _resolve(profile)
    if not inplace:
        model = copy.deepcopy(model)
    twins = {**DEFAULT_TWINS, **(mapping or {})}
    exclude = frozenset(exclude)
    model, conversion = _convert(model, profile, exclude, twins, {"analog_attention": analog_attention}, dry=False)
    conversion.check(strict)
    setattr(model, _STATE, ModelState(profile, exclude))
    _add_model_hooks(model)
    program(model, seed=0)
    if calibration is not None:
        calibrate(model, calibration)
    return (model, conversion) if report else model


def _add_model_hooks(model: nn.Module) -> None:
    state = model_state(model)
    add_model_hooks(model, state.profile, state.exclude)


def set_profile(model: nn.Module, profile: Profile | str, *, noise_scale: float | None = None) -> nn.Module:
    """Re-target a converted model to another profile, without rebuilding it.

    The chip seed and inference time set by :func:`program` are kept; the next
    forward draws the chip instance under the new profile.

    >>> hwprofiles.set_profile(noisy, "rram-neurram", noise_scale=0.5)  # doctest: +SKIP
    """
    state = model_state(model)
    profile = _resolve(profile, noise_scale)
    state.profile = profile
    for mvm in analog_products(model):
        mvm.site.set_profile(profile)  # calibrated input bounds are kept
    first = next(noise_sites(model), None)
    _add_model_hooks(model)
    if first is not None:
        program(model, seed=first.chip_seed, t_inference_s=first.t_inference_s)
    return model


def noisy_layer_names(model: nn.Module, profile: Profile | str | None = None) -> list[str]:
    """Qualified names of the layers of a float model that :func:`to_noisy` would give
    noise: the matrix-product layers, plus the input and every other layer output
    when ``profile`` places noise after every layer."""
    every_layer = profile is not None and load_profile(profile).placement == "every_layer"
    names = [INPUT] if every_layer else []
    inside: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(p + ".") for p in inside):
            continue
        if type(module) in DEFAULT_TWINS or isinstance(module, NoisyTwin):
            names.append(name)
            inside.append(name)
        elif every_layer and isinstance(module, EVERY_LAYER_TYPES):
            names.append(name)
    return names


def set_noise_scale(model: nn.Module, noise_scale: float) -> nn.Module:
    """Change only the global noise scale of a converted model (cheap enough for every
    training step; the chip seed and inference time are kept).

    Raises:
        ProfileError: (a ValueError) ``noise_scale`` is NaN, infinite or negative.
    """
    state = model_state(model)
    state.profile = state.profile.with_noise_scale(noise_scale)
    for site in noise_sites(model):
        site.set_scale(state.profile.noise_scale)
    return model


def program(model: nn.Module, *, seed: int, t_inference_s: float | None = None) -> nn.Module:
    """Draw one chip instance of a converted model.

    Static noise (programming noise, drift coefficients, stuck cells, fabrication
    phase errors) is fixed by ``seed`` and held until the next ``program``;
    per-read noise is drawn afresh on every forward from a stream seeded from the
    same ``seed``. The same seed always gives the same numbers.

    Args:
        model: a model made by :func:`to_noisy`.
        seed: the chip instance.
        t_inference_s: time since programming, in s (default: the profile's).

    Raises:
        ValueError: ``t_inference_s`` is negative, NaN or infinite.
    """
    model_state(model)
    if t_inference_s is not None:
        try:
            t_s = float(t_inference_s)
        except (TypeError, ValueError):
            t_s = float("nan")
        if not (math.isfinite(t_s) and t_s >= 0):
            raise ValueError(
                f"t_inference_s must be a finite time in seconds >= 0 since programming, got {t_inference_s!r}"
            )
    for index, site in enumerate(noise_sites(model)):
        site.seed(seed, index, t_inference_s)
    return model


def to_clean(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The float model back: twins become their float layers (weights untouched), noise hooks go."""
    model_state(model)
    if not inplace:
        model = copy.deepcopy(model)
    remove_model_hooks(model)
    delattr(model, _STATE)
    return swap_modules(model, lambda name, m: m.to_float() if isinstance(m, NoisyTwin) else None)


__all__ = [
    "DEFAULT_TWINS",
    "EVERY_LAYER_TYPES",
    "INPUT",
    "ModelState",
    "analog_products",
    "calibrate",
    "conversion_report",
    "model_state",
    "noise_sites",
    "noisy_layer_names",
    "profile_of",
    "program",
    "set_noise_scale",
    "set_profile",
    "to_clean",
    "to_noisy",
]
