"""Turn a float model into its noisy twin under a profile, and back.

    >>> import torch.nn as nn, hwprofiles
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> noisy = hwprofiles.to_noisy(model, "pcm-joshi2020")
    >>> hwprofiles.program(noisy, seed=1, t_inference_s=3600)  # one chip instance
    >>> clean = hwprofiles.to_clean(noisy)
"""

from __future__ import annotations

import copy
from typing import Iterable, Iterator

import torch
import torch.nn as nn

from hwprofiles.nn.layers import DEFAULT_TWINS, NoisyLayerMixin
from hwprofiles.nn.site import NoiseSite
from hwprofiles.profiles import Profile, load_profile

# Layers whose outputs carry noise under `placement: every_layer` (besides the twins),
# as the seed study places it: normalisation, activations and pooling.
EVERY_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Softplus, nn.PReLU,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
)

_STATE = "_hwprofiles"  # attribute on the root module: profile and exclusions
INPUT = "<input>"  # the name of the network input's noise site (for exclude=)


class OutputNoiseHook:
    """A forward hook adding a site's output noise to a layer's output."""

    def __init__(self, site: NoiseSite) -> None:
        self.site = site

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if isinstance(output, torch.Tensor):
            return self.site.apply_outputs(output, module.training)
        return None


class InputNoiseHook:
    """A forward pre-hook adding a site's output noise to the network input."""

    def __init__(self, site: NoiseSite) -> None:
        self.site = site

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if args and isinstance(args[0], torch.Tensor):
            return (self.site.apply_outputs(args[0], module.training), *args[1:])
        return None


class _ModelState:
    def __init__(self, profile: Profile, exclude: frozenset[str]) -> None:
        self.profile = profile
        self.exclude = exclude


def _resolve(profile: Profile | str, noise_scale: float | None = None) -> Profile:
    profile = load_profile(profile)
    return profile if noise_scale is None else profile.with_noise_scale(noise_scale)


def _excluded(name: str, exclude: Iterable[str]) -> bool:
    return any(name == e or name.startswith(e + ".") for e in exclude)


def _swap(module: nn.Module, profile: Profile, name: str, mapping: dict) -> nn.Module | None:
    from hwprofiles.plugins import get_plugin_manager

    twin = get_plugin_manager().hook.hwprofiles_swap_layer(module=module, profile=profile, name=name)
    if twin is not None:
        return twin
    twin_type = mapping.get(type(module))  # exact type: a subclass may compute something else
    if twin_type is None:
        return None
    return twin_type.from_float(module, NoiseSite(profile, name))


def to_noisy(
    model: nn.Module,
    profile: Profile | str,
    *,
    exclude: Iterable[str] = (),
    mapping: dict[type[nn.Module], type[nn.Module]] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """The noisy twin of ``model`` under ``profile``.

    Swaps ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` (exact types) for noisy
    twins that share the parameters; under ``placement: every_layer`` it also adds
    output noise after the input and after every normalisation, activation and
    pooling layer. A plugin's ``hwprofiles_swap_layer`` hook may supply the twin
    of any module. Device, dtype and hooks are kept.

    Args:
        model: the float model.
        profile: a :class:`Profile`, a profile name or a profile file path.
        exclude: qualified module names (and their children) left float and noise-free;
            ``"<input>"`` leaves the network input noise-free under every-layer placement.
        mapping: ``{float type: twin type}`` entries added to (or overriding) the defaults.
        inplace: convert ``model`` itself instead of a deep copy.

    Returns:
        The converted model; call :func:`program` to draw a chip instance.
    """
    profile = _resolve(profile)
    if not inplace:
        model = copy.deepcopy(model)
    twins = {**DEFAULT_TWINS, **(mapping or {})}
    exclude = frozenset(exclude)
    if isinstance(model, tuple(twins)) and "" not in exclude:
        raise TypeError("to_noisy needs a model that contains layers, not a bare layer; wrap it in nn.Sequential")
    for name, module in list(model.named_modules()):
        if name == "" or _excluded(name, exclude):
            continue
        twin = _swap(module, profile, name, twins)
        if twin is not None:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, twin)
    setattr(model, _STATE, _ModelState(profile, exclude))
    _add_every_layer_hooks(model)
    program(model, seed=0)
    return model


def _state(model: nn.Module) -> _ModelState:
    state = getattr(model, _STATE, None)
    if state is None:
        raise TypeError("this model was not made by hwprofiles.to_noisy")
    return state


def _remove_every_layer_hooks(model: nn.Module) -> None:
    # Found by type rather than through handles: handles would still point at the
    # original model after a deep copy.
    for hooks in [model._forward_pre_hooks] + [m._forward_hooks for m in model.modules()]:
        for key in [k for k, h in hooks.items() if isinstance(h, (InputNoiseHook, OutputNoiseHook))]:
            del hooks[key]


def _add_every_layer_hooks(model: nn.Module) -> None:
    state = _state(model)
    _remove_every_layer_hooks(model)
    if state.profile.placement != "every_layer":
        return
    if INPUT not in state.exclude:
        model.register_forward_pre_hook(InputNoiseHook(NoiseSite(state.profile, INPUT, outputs_only=True)))
    for name, module in model.named_modules():
        # isinstance, not the exact type: a quantized ReLU's output is still an activation
        if name and isinstance(module, EVERY_LAYER_TYPES) and not _excluded(name, state.exclude):
            module.register_forward_hook(OutputNoiseHook(NoiseSite(state.profile, name, outputs_only=True)))


def noise_sites(model: nn.Module) -> Iterator[NoiseSite]:
    """Every noise site of a converted model, in a fixed order (input first, then module order)."""
    for hook in model._forward_pre_hooks.values():
        if isinstance(hook, InputNoiseHook):
            yield hook.site
    for module in model.modules():
        if isinstance(module, NoisyLayerMixin):
            yield module.noise_site
        for hook in module._forward_hooks.values():
            if isinstance(hook, OutputNoiseHook):
                yield hook.site


def set_profile(model: nn.Module, profile: Profile | str, *, noise_scale: float | None = None) -> nn.Module:
    """Re-target a converted model to another profile, without rebuilding it.

    The chip seed and inference time set by :func:`program` are kept; the next
    forward draws the chip instance under the new profile.

    >>> hwprofiles.set_profile(noisy, "rram-neurram", noise_scale=0.5)  # doctest: +SKIP
    """
    state = _state(model)
    profile = _resolve(profile, noise_scale)
    state.profile = profile
    for module in model.modules():
        if isinstance(module, NoisyLayerMixin):
            module.noise_site.set_profile(profile)  # calibrated input bounds are kept
    first = next(noise_sites(model), None)
    _add_every_layer_hooks(model)
    if first is not None:
        program(model, seed=first.chip_seed, t_inference_s=first.t_inference_s)
    return model


def noisy_layer_names(model: nn.Module, profile: Profile | str | None = None) -> list[str]:
    """Qualified names of the layers of a float model that :func:`to_noisy` would give
    noise: the matrix-product layers, plus the input and every other layer output
    when ``profile`` places noise after every layer."""
    every_layer = profile is not None and load_profile(profile).placement == "every_layer"
    names = [INPUT] if every_layer else []
    for name, module in model.named_modules():
        if not name:
            continue
        if type(module) in DEFAULT_TWINS or isinstance(module, NoisyLayerMixin):
            names.append(name)
        elif every_layer and isinstance(module, EVERY_LAYER_TYPES):
            names.append(name)
    return names


def set_noise_scale(model: nn.Module, noise_scale: float) -> nn.Module:
    """Change only the global noise scale of a converted model (cheap enough for every
    training step; the chip seed and inference time are kept)."""
    state = _state(model)
    state.profile = state.profile.with_noise_scale(noise_scale)
    for site in noise_sites(model):
        site.scale = float(noise_scale)
        site.profile = state.profile
        site.chip_version += 1
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
    """
    _state(model)
    for index, site in enumerate(noise_sites(model)):
        site.seed(seed, index, t_inference_s)
    return model


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Set every calibrated DAC's input bound from data.

    Each layer takes the largest per-batch percentile of |input| seen (the
    profile's ``calibration_percentile``). Layers with a fixed bound are untouched.
    """
    from hwprofiles.nn import analog

    layers = [m for m in model.modules() if isinstance(m, NoisyLayerMixin)]
    seen: dict[int, float] = {}

    def record(module: nn.Module, args: tuple) -> None:
        spec = module.noise_site.profile.dac
        if spec is not None and spec.bound_mode == "calibrated":
            value = analog.percentile_abs(args[0], spec.calibration_percentile)
            seen[id(module)] = max(seen.get(id(module), 0.0), value)
            module.input_bound = seen[id(module)]

    handles = [m.register_forward_pre_hook(record) for m in layers]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return model


def to_clean(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The float model back: twins become their float layers (weights untouched), noise hooks go."""
    _state(model)
    if not inplace:
        model = copy.deepcopy(model)
    _remove_every_layer_hooks(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, NoisyLayerMixin):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.to_float())
    delattr(model, _STATE)
    return model
