"""The checks of the conformance kit (see :mod:`hwprofiles.testing`).

Each check is a function of one :class:`_Case` (the kind, its validated entry, a
profile holding only that entry, the device) that raises ``AssertionError`` with
a message saying what broke and how to fix it. :func:`check_noise_kind` runs them
in the order of :data:`CHECKS` and stops at the first failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import yaml

from hwprofiles.errors import ConformanceError, HwProfilesError
from hwprofiles.nn import analog
from hwprofiles.nn.convert import program, to_noisy
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.noise.base import STAGES, NoiseKind, StageContext, WeightState
from hwprofiles.profiles import Profile, dump_profile, parse_profile, profile_json_schema
from hwprofiles.registry import NoiseModel, get_noise_model, list_noise_models, noise_models
from hwprofiles.untrusted import load_yaml

CHECKS: tuple[str, ...] = (
    "entry_round_trip",  # the entry survives YAML and JSON, alone and inside a profile
    "json_schema",  # its JSON Schema is valid (Draft 2020-12) and accepts the entry
    "field_docs",  # every field has a description, every number a lower and an upper bound
    "stages_declared",  # `stages` names known stages, and exactly their methods are overridden
    "stage_effects",  # each declared stage acts at scale 1, is a no-op at scale 0, draws only from ctx
    "zero_scale",  # noise_scale 0 on a float path (no DAC, no ADC) is bitwise the float model
    "seeds",  # one seed, one chip; another seed, another chip
    "chip_semantics",  # static noise held per chip instance, per-read noise fresh, training draws anew
    "gradients",  # training mode: finite, non-zero gradient on the weight, finite on the input
    "shape_dtype_device",  # outputs keep the float model's shape, dtype and device (CPU, and CUDA if present)
    "finite",  # no NaN or inf on random, large and zero inputs, nor with zero weights
)

FAN_IN = 16  # inputs of the linear test layer; the stage tensors use the same size
_PROGRAM_TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}  # weights -> conductances -> weights is not bitwise


@dataclass
class ConformanceReport:
    """What :func:`check_noise_kind` found: every check passed, except those skipped."""

    kind: str
    owner: str
    devices: list[str]
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"noise kind '{self.kind}' (plugin '{self.owner}'): {len(self.passed)} checks passed "
            f"on {', '.join(self.devices)}"
        ]
        lines += [f"  ok    {name}" for name in self.passed]
        lines += [f"  skip  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


@dataclass
class _Case:
    model: NoiseModel
    implementation: type[NoiseKind]
    entry: Any
    profile: Profile
    deterministic: bool
    device: torch.device
    devices: list[torch.device]

    @property
    def kind(self) -> str:
        return self.model.kind

    @property
    def stages(self) -> list[str]:
        return [s for s in STAGES if s in self.implementation.stages]


def _require(condition: bool, message: str) -> None:
    # An explicit raise, not `assert`: the kit must also fail under python -O.
    if not condition:
        raise AssertionError(message)


def conformance_profile(
    kind: str, entry: Mapping[str, Any] | None = None, profile_overrides: Mapping[str, Any] | None = None
) -> Profile:
    """A profile holding only one entry of ``kind``: no DAC, ADC or tiles unless overridden.

    Args:
        kind: a registered noise kind.
        entry: values for the entry's fields (``kind`` may be left out).
        profile_overrides: other profile fields, e.g. ``{"adc": {"bits": 8}, "t_inference_s": 86400}``.

    Raises:
        ProfileError: the entry or the overrides are not valid.
    """
    values = {"kind": kind, **dict(entry or {})}
    if values["kind"] != kind:
        raise ValueError(f"the entry is of kind '{values['kind']}', not '{kind}'")
    overrides = dict(profile_overrides or {})
    if "noise" in overrides:
        raise ValueError("profile_overrides cannot hold 'noise': pass the entry's values as `entry`")
    data = {
        "name": "conformance",
        "technology": "generic",
        "description": f"Only the noise kind {kind}, as the conformance kit checks it.",
        **overrides,
        "noise": [values],
    }
    return parse_profile(data, source=f"conformance profile of '{kind}'")


# -- small models and tensors --------------------------------------------------------------
class _SelfAttention(nn.Module):
    """Self-attention as a one-input model (the kit's models take one tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class _Recurrent(nn.Module):
    """A recurrent layer's output sequence as a one-input model."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.rnn = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


# Options of to_noisy per test model: attention's products through the analog path too.
_OPTIONS: dict[type[nn.Module], dict[str, Any]] = {_SelfAttention: {"analog_attention": True}}


def _layers(device: torch.device, dtype: torch.dtype = torch.float32) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """One small model per kind of twin (linear, conv, transposed conv, attention,
    recurrent) with an input, seeded."""
    g = torch.Generator().manual_seed(0)
    cases = [
        ("linear", nn.Sequential(nn.Linear(FAN_IN, 8)), torch.randn(4, FAN_IN, generator=g)),
        ("conv2d", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), torch.randn(2, 3, 6, 6, generator=g)),
        (
            "conv_transpose2d",
            nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2)),
            torch.randn(2, 3, 4, 4, generator=g),
        ),
        ("attention", _SelfAttention(), torch.randn(2, 5, 8, generator=g)),
        ("lstm", _Recurrent(nn.LSTM(6, 8, batch_first=True)), torch.randn(2, 4, 6, generator=g)),
    ]
    for _, model, _ in cases:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return [(name, model.to(device, dtype), x.to(device, dtype)) for name, model, x in cases]


def _converted(
    case: _Case, model: nn.Module, *, seed: int = 0, training: bool = False, profile: Profile | None = None
) -> nn.Module:
    noisy = to_noisy(model, profile or case.profile, **_OPTIONS.get(type(model), {}))
    program(noisy, seed=seed)
    return noisy.train(training)


def _chips(noisy: nn.Module) -> list[torch.Tensor]:
    """The programmed weights every analog product of ``noisy`` holds (cached chips only)."""
    return [m._chip[1] for m in noisy.modules() if isinstance(m, AnalogMVM) and m._chip is not None]


def _stage_input(stage: str, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if stage in ("program", "read"):  # normalised weights, |w| <= 1, each row reaching 1
        w = torch.randn(8, FAN_IN, generator=g)
        t = w / w.abs().amax(dim=1, keepdim=True)
    elif stage == "inputs":
        t = torch.randn(4, FAN_IN, generator=g)
    elif stage == "tile_outputs":  # partial sums of a tile in normalised units
        t = 2.0 * torch.randn(4, 8, generator=g)
    else:
        t = torch.randn(4, 8, generator=g)
    return t.to(device)


def _stage_context(case: _Case, scale: float, seed: int) -> StageContext:
    p = case.profile
    rows = min(p.tile.rows, FAN_IN) if p.tile is not None else FAN_IN
    out_bound = analog.adc_bound(p.adc, rows) if p.adc is not None else float(rows)
    generator = torch.Generator(device=case.device)
    generator.manual_seed(seed)
    return StageContext(
        generator=generator,
        scale=scale,
        training=False,
        t_inference_s=p.t_inference_s,
        g_max_us=p.mapping.g_max_us,
        out_bound=out_bound,
        tile_rows=rows,
        layer="conformance",
    )


def _run_stage(kind: NoiseKind, stage: str, t: torch.Tensor, ctx: StageContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The stage's result on ``t`` and the output gain it sets (1 for all but ``program``)."""
    kind.check(ctx)
    if stage == "program":
        state = WeightState(target=t, g_max_us=ctx.g_max_us)
        kind.program(state, ctx)
        return state.weights(), torch.as_tensor(state.out_gain, dtype=t.dtype, device=t.device)
    return getattr(kind, stage)(t, ctx), torch.ones((), dtype=t.dtype, device=t.device)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


# -- the checks ------------------------------------------------------------------------------
def _entry_round_trip(case: _Case) -> None:
    entry, model = case.entry, case.model.entry_model
    data = entry.model_dump(mode="json")
    _require(data["kind"] == case.kind, f"the entry dumps kind '{data['kind']}', not '{case.kind}'")
    via_json = model.model_validate(json.loads(json.dumps(data)))
    _require(via_json == entry, f"the entry does not survive JSON: {data} came back as {via_json.model_dump()}")
    via_yaml = model.model_validate(load_yaml(yaml.safe_dump(data)))
    _require(via_yaml == entry, f"the entry does not survive YAML: {data} came back as {via_yaml.model_dump()}")
    again = parse_profile(load_yaml(dump_profile(case.profile)))
    _require(again == case.profile, "a profile holding the entry does not survive dump_profile and parse_profile")
    _require(
        type(again.noise[0]) is model,
        f"a profile's entry of kind '{case.kind}' is read as {type(again.noise[0]).__name__}, not {model.__name__}",
    )


def _json_schema(case: _Case) -> None:
    try:
        from jsonschema import Draft202012Validator
    except ImportError:  # pragma: no cover - depends on the environment
        raise AssertionError(
            "the json_schema check needs jsonschema: pip install 'jsonschema>=4.18' (it is in hwprofiles' dev extra)"
        ) from None
    schema = case.model.entry_model.model_json_schema()
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(case.entry.model_dump(mode="json"))]
    _require(not errors, f"the entry's own JSON Schema rejects the entry: {errors}")
    profile_schema = profile_json_schema()
    Draft202012Validator.check_schema(profile_schema)
    mapping = profile_schema["properties"]["noise"]["items"].get("discriminator", {}).get("mapping", {})
    _require(case.kind in mapping, f"'{case.kind}' is missing from the profile schema's kinds ({sorted(mapping)})")
    errors = [e.message for e in Draft202012Validator(profile_schema).iter_errors(case.profile.model_dump(mode="json"))]
    _require(not errors, f"the profile JSON Schema rejects a profile holding the entry: {errors}")


def _number_nodes(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The number/integer alternatives of one property's schema (through anyOf, for Optional)."""
    options = node.get("anyOf", [node])
    return [o for o in options if o.get("type") in ("number", "integer")]


def _field_docs(case: _Case) -> None:
    schema = case.model.entry_model.model_json_schema()
    for name, node in schema.get("properties", {}).items():
        if name == "kind":  # the Literal key: its meaning is the kind's docstring
            continue
        _require(
            bool(node.get("description")),
            f"field '{name}' has no description: add Field(..., description=...) saying what it is and its unit",
        )
        for number in _number_nodes(node):
            low = "minimum" in number or "exclusiveMinimum" in number
            high = "maximum" in number or "exclusiveMaximum" in number
            _require(
                low and high,
                f"field '{name}' is a number without a lower and an upper bound: "
                "give Field(...) ge/gt and le/lt, so a typo in a profile is an error",
            )


def _stages_declared(case: _Case) -> None:
    impl = case.implementation
    declared = impl.stages
    _require(
        isinstance(declared, (set, frozenset)) and bool(declared),
        f"{impl.__name__}.stages must be a non-empty frozenset of stage names, got {declared!r}",
    )
    unknown = sorted(set(declared) - set(STAGES))
    _require(not unknown, f"{impl.__name__}.stages names unknown stages {unknown}; the stages are {list(STAGES)}")
    for stage in STAGES:
        overridden = getattr(impl, stage) is not getattr(NoiseKind, stage)
        if stage in declared:
            _require(overridden, f"{impl.__name__} declares the stage '{stage}' but does not override {stage}()")
        else:
            _require(
                not overridden,
                f"{impl.__name__} overrides {stage}() but does not declare '{stage}' in "
                "stages, so the engine never calls it: add it to stages or remove the method",
            )


def _stage_effects(case: _Case) -> None:
    for stage in case.stages:
        kind = case.implementation(case.entry, case.profile)
        t = _stage_input(stage, case.device)
        before = t.clone()
        out, gain = _run_stage(kind, stage, t, _stage_context(case, 1.0, seed=0))
        _require(
            torch.equal(t, before),
            f"{stage}() changed its input tensor in place: return a new tensor "
            "(the engine still uses the one it passed)",
        )
        _require(
            out.shape == t.shape and out.dtype == t.dtype and out.device == t.device,
            f"{stage}() returned shape {tuple(out.shape)}, {out.dtype} on {out.device} for an input of "
            f"shape {tuple(t.shape)}, {t.dtype} on {t.device}",
        )
        _require(bool(torch.isfinite(out).all()), f"{stage}() returned NaN or inf at noise_scale 1")
        if stage == "program":
            acts = not torch.allclose(out, t, **_PROGRAM_TOLERANCE) or not torch.allclose(gain, torch.ones_like(gain))
        else:
            acts = not torch.equal(out, t)
        _require(
            acts,
            f"the declared stage {stage}() left its tensor unchanged at noise_scale 1; if the entry's "
            "defaults switch the kind off, pass an entry with non-zero magnitudes to check_noise_kind",
        )
        replay, _ = _run_stage(kind, stage, t, _stage_context(case, 1.0, seed=0))
        _require(
            torch.equal(replay, out),
            f"{stage}() gave another result from a generator seeded the same: draw "
            "only through ctx (ctx.randn, ctx.rand, ctx.generator), never from torch's global generator",
        )
        zero, gain0 = _run_stage(kind, stage, t, _stage_context(case, 0.0, seed=0))
        if stage == "program":
            same = torch.allclose(zero, t, **_PROGRAM_TOLERANCE) and torch.allclose(gain0, torch.ones_like(gain0))
        else:
            same = torch.equal(zero, t)
        _require(
            same,
            f"at noise_scale 0 {stage}() must leave its tensor unchanged (multiply every magnitude by "
            f"ctx.scale, or return early when it is 0); it moved it by up to {_max_diff(zero, t):.3g}",
        )


def _zero_scale(case: _Case) -> None:
    ideal = case.profile.model_copy(update={"dac": None, "adc": None, "noise_scale": 0.0})
    for name, model, x in _layers(case.device):
        for training in (False, True):
            noisy = _converted(case, model, training=training, profile=ideal)
            model.train(training)
            with torch.no_grad():
                y, clean = noisy(x), model(x)
            _require(
                torch.equal(y, clean),
                f"{name} layer, {'training' if training else 'eval'} mode: noise_scale 0 "
                f"without DAC and ADC must give the float output exactly; it differs by up to {_max_diff(y, clean):.3g}",
            )


def _seeds(case: _Case) -> None:
    for name, model, x in _layers(case.device):
        with torch.no_grad():
            first = _converted(case, model, seed=1)(x)
            again = _converted(case, model, seed=1)(x)
            other = _converted(case, model, seed=2)(x)
        _require(
            torch.equal(first, again),
            f"{name} layer: two chips programmed with seed 1 gave different outputs: "
            "draw only through ctx (ctx.randn, ctx.rand, ctx.generator), never from torch's global generator",
        )
        if case.deterministic:
            _require(
                torch.equal(first, other),
                f"{name} layer: seeds 1 and 2 gave different outputs, but the kind was checked as deterministic",
            )
        else:
            _require(
                not torch.equal(first, other),
                f"{name} layer: seeds 1 and 2 gave the same output; if the kind "
                "draws nothing at these magnitudes, check it with deterministic=True",
            )


def _chip_semantics(case: _Case) -> None:
    stages = set(case.stages)
    for name, model, x in _layers(case.device):
        noisy = _converted(case, model, seed=3)
        with torch.no_grad():
            y1 = noisy(x)
            y2 = noisy(x)
            if "program" in stages:
                held = [w.clone() for w in _chips(noisy)]
                _require(bool(held), f"{name} layer: no programmed chip was held after a forward in eval mode")
                noisy(x)
                _require(
                    all(torch.equal(a, b) for a, b in zip(_chips(noisy), held)),
                    f"{name} layer: the programmed "
                    "weights changed between two forwards of one chip instance in eval mode",
                )
                program(noisy, seed=3)
                noisy(x)
                _require(
                    all(torch.equal(a, b) for a, b in zip(_chips(noisy), held)),
                    f"{name} layer: programming "
                    "seed 3 again gave other weights: program() must depend only on ctx.generator and the weights",
                )
                if stages == {"program"}:
                    _require(
                        torch.equal(y1, y2),
                        f"{name} layer: a kind acting only when programming must give one "
                        "answer per chip instance, but two forwards differ",
                    )
            elif not case.deterministic:
                _require(
                    not torch.equal(y1, y2),
                    f"{name} layer: per-read noise ({', '.join(case.stages)}) must be "
                    "drawn afresh on every forward, but two forwards in eval mode gave the same output",
                )
            if not case.deterministic:
                noisy.train()
                _require(
                    not torch.equal(noisy(x), noisy(x)),
                    f"{name} layer: in training mode every draw must be "
                    "fresh each step, but two forwards gave the same output",
                )


def _gradients(case: _Case) -> None:
    for name, model, x in _layers(case.device):
        noisy = _converted(case, model, training=True)
        x = x.clone().requires_grad_(True)
        y = noisy(x)
        _require(
            y.requires_grad,
            f"{name} layer: the output does not require grad in training mode; a stage "
            "cut the graph (add or multiply noise to the tensor instead of detaching it)",
        )
        c = torch.randn(y.shape, generator=torch.Generator().manual_seed(2)).to(y)
        (y * c).sum().backward()
        for param_name, param in noisy.named_parameters():
            if "weight" not in param_name:
                continue
            grad = param.grad
            _require(grad is not None, f"{name} layer: no gradient reached {param_name} in training mode")
            _require(bool(torch.isfinite(grad).all()), f"{name} layer: the gradient of {param_name} holds NaN or inf")
            _require(bool(grad.abs().sum() > 0), f"{name} layer: the gradient of {param_name} is zero everywhere")
        _require(
            x.grad is not None and bool(torch.isfinite(x.grad).all()),
            f"{name} layer: the input's gradient "
            "is missing or not finite; compute noise magnitudes from detached values",
        )


def _shape_dtype_device(case: _Case) -> None:
    for device in case.devices:
        for dtype in (torch.float32, torch.float64):
            for name, model, x in _layers(device, dtype):
                with torch.no_grad():
                    clean = model(x)
                for training in (False, True):
                    noisy = _converted(case, model, training=training)
                    with torch.no_grad():
                        y = noisy(x)
                    where = f"{name} layer, {dtype}, {device}, {'training' if training else 'eval'} mode"
                    _require(
                        y.shape == clean.shape, f"{where}: output shape {tuple(y.shape)}, not {tuple(clean.shape)}"
                    )
                    _require(y.dtype == dtype, f"{where}: output dtype {y.dtype}")
                    _require(y.device == clean.device, f"{where}: output on {y.device}")
                    _require(bool(torch.isfinite(y).all()), f"{where}: output holds NaN or inf")
                    for p in noisy.parameters():
                        _require(
                            p.dtype == dtype and p.device == clean.device,
                            f"{where}: a parameter moved to {p.dtype} on {p.device}",
                        )


def _finite(case: _Case) -> None:
    for name, model, x in _layers(case.device):
        inputs = {"random": x, "large (x 1e4)": 1e4 * x, "zero": torch.zeros_like(x)}
        for training in (False, True):
            noisy = _converted(case, model, training=training)
            for label, xi in inputs.items():
                with torch.no_grad():
                    y = noisy(xi)
                _require(
                    bool(torch.isfinite(y).all()),
                    f"{name} layer, {label} inputs, "
                    f"{'training' if training else 'eval'} mode: the output holds NaN or inf",
                )
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        for training in (False, True):
            with torch.no_grad():
                y = _converted(case, model, training=training)(x)
            _require(
                bool(torch.isfinite(y).all()),
                f"{name} layer with zero weights, "
                f"{'training' if training else 'eval'} mode: the output holds NaN or inf",
            )


_CHECK_FUNCTIONS: dict[str, Callable[[_Case], None]] = {
    "entry_round_trip": _entry_round_trip,
    "json_schema": _json_schema,
    "field_docs": _field_docs,
    "stages_declared": _stages_declared,
    "stage_effects": _stage_effects,
    "zero_scale": _zero_scale,
    "seeds": _seeds,
    "chip_semantics": _chip_semantics,
    "gradients": _gradients,
    "shape_dtype_device": _shape_dtype_device,
    "finite": _finite,
}
assert tuple(_CHECK_FUNCTIONS) == CHECKS


# -- entry points ------------------------------------------------------------------------------
def check_noise_kind(
    kind: str,
    entry: Mapping[str, Any] | None = None,
    *,
    profile_overrides: Mapping[str, Any] | None = None,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    skip: Mapping[str, str] | None = None,
) -> ConformanceReport:
    """Check that a registered noise kind keeps the contract of :class:`~hwprofiles.noise.NoiseKind`.

    The kind is checked alone, in a profile holding only its entry (see
    :func:`conformance_profile`), on one small layer of each kind of twin: linear,
    conv, transposed conv, attention (with its attention products analog) and LSTM.

    Args:
        kind: the registered kind, e.g. ``"pcm_drift"``.
        entry: values for the entry's fields; needed for required fields, and for defaults
            that switch the kind off (each declared stage must act at noise_scale 1).
        profile_overrides: other profile fields the kind needs, e.g. an ADC for an output
            bound, or a ``t_inference_s`` its data covers.
        deterministic: the kind draws nothing (e.g. a pure quantiser): different seeds must then
            give the same output, instead of different ones.
        device: where the checks run; the dtype/device check also runs on CUDA when it is available.
        skip: ``{check name: reason}`` for checks that do not apply; the reasons go in the report.

    Returns:
        A :class:`ConformanceReport` listing the checks passed and skipped.

    Raises:
        ConformanceError: (an ``AssertionError``) at the first failed check, naming the kind,
            its plugin, the check and what to fix.
        UnknownNoiseModelError: no such kind is registered.

    >>> check_noise_kind("rram_cmo").passed[-1]
    'finite'
    """
    model = get_noise_model(kind)
    skip = dict(skip or {})
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown} in skip; the checks are {list(CHECKS)}")

    def failure(check: str, detail: str) -> ConformanceError:
        return ConformanceError(
            f"noise kind '{kind}' (plugin '{model.owner}') fails the '{check}' check: {detail}", kind=kind, check=check
        )

    try:
        implementation = model.implementation
        profile = conformance_profile(kind, entry, profile_overrides)
    except (HwProfilesError, ValueError) as exc:
        raise failure(
            "setup",
            f"{exc}. Pass values for required fields as `entry` and other profile fields as `profile_overrides`.",
        ) from exc
    if not (isinstance(implementation, type) and issubclass(implementation, NoiseKind)):
        raise failure("setup", f"its implementation {implementation!r} is not a hwprofiles.noise.NoiseKind subclass")
    main = torch.device(device)
    devices = [main]
    if main.type != "cuda" and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    case = _Case(model, implementation, profile.noise[0], profile, deterministic, main, devices)
    report = ConformanceReport(kind=kind, owner=model.owner, devices=[str(d) for d in devices])
    for name, check in _CHECK_FUNCTIONS.items():
        if name in skip:
            report.skipped[name] = skip[name]
            continue
        try:
            check(case)
        except AssertionError as exc:
            raise failure(name, str(exc)) from exc
        except Exception as exc:  # a kind that raises is a failed check, not a crashed kit
            raise failure(name, f"{type(exc).__name__}: {exc}") from exc
        report.passed.append(name)
    return report


def parametrize_kinds(pattern: str = "*", *, owner: str | None = None, argname: str = "kind") -> Any:
    """A ``pytest.mark.parametrize`` over the registered kinds matching ``pattern`` (and ``owner``).

    Args:
        pattern: an ``fnmatch`` pattern over kind names.
        owner: keep only the kinds this plugin registered (its entry-point name).
        argname: the test argument that receives the kind.

    Raises:
        ValueError: no registered kind matches (is the plugin installed?).

    >>> @parametrize_kinds(owner="builtin")  # doctest: +SKIP
    ... def test_conforms(kind):
    ...     check_noise_kind(kind)
    """
    import pytest

    models = noise_models()
    kinds = [k for k in list_noise_models(pattern) if owner is None or models[k].owner == owner]
    if not kinds:
        owners = sorted({m.owner for m in models.values()})
        raise ValueError(
            f"no registered noise kind matches pattern '{pattern}'"
            + (f" and plugin '{owner}'" if owner else "")
            + f"; the plugins with kinds are {owners}. Is the plugin installed?"
        )
    return pytest.mark.parametrize(argname, kinds)
