"""The checks that run a kind: on stage tensors directly, and through converted models."""

from __future__ import annotations

from collections.abc import Callable

import torch

from hwprofiles.nn.convert import program
from hwprofiles.testing.harness import (
    Case,
    chips,
    converted,
    layers,
    max_diff,
    mode,
    require,
    run_stage,
    stage_context,
    stage_input,
)

# What to do when one seed gives two answers.
_DRAW_FROM_CTX = "draw only through ctx (ctx.randn, ctx.rand, ctx.generator), never from torch's global generator"


def _unchanged(stage: str, out: torch.Tensor, t: torch.Tensor, gain: torch.Tensor) -> bool:
    """Whether a stage left its tensor (and, for ``program``, the output gain) as it was."""
    if stage == "program":  # weights -> conductances -> weights is not bitwise
        return torch.allclose(out, t, rtol=1e-5, atol=1e-6) and torch.allclose(gain, torch.ones_like(gain))
    return torch.equal(out, t)


def _stage_effects(case: Case) -> None:
    for stage in case.stages:
        kind = case.implementation(case.entry, case.profile)
        t = stage_input(stage, case.device)
        before = t.clone()
        out, gain = run_stage(kind, stage, t, stage_context(case, 1.0, seed=0))
        require(
            torch.equal(t, before),
            f"{stage}() changed its input tensor in place: return a new tensor "
            "(the engine still uses the one it passed)",
        )
        require(
            out.shape == t.shape and out.dtype == t.dtype and out.device == t.device,
            f"{stage}() returned shape {tuple(out.shape)}, {out.dtype} on {out.device} for an input of "
            f"shape {tuple(t.shape)}, {t.dtype} on {t.device}",
        )
        require(bool(torch.isfinite(out).all()), f"{stage}() returned NaN or inf at noise_scale 1")
        require(
            not _unchanged(stage, out, t, gain),
            f"the declared stage {stage}() left its tensor unchanged at noise_scale 1; if the entry's "
            "defaults switch the kind off, pass an entry with non-zero magnitudes to check_noise_kind",
        )
        replay, _ = run_stage(kind, stage, t, stage_context(case, 1.0, seed=0))
        require(
            torch.equal(replay, out),
            f"{stage}() gave another result from a generator seeded the same: {_DRAW_FROM_CTX}",
        )
        zero, gain0 = run_stage(kind, stage, t, stage_context(case, 0.0, seed=0))
        require(
            _unchanged(stage, zero, t, gain0),
            f"at noise_scale 0 {stage}() must leave its tensor unchanged (multiply every magnitude by "
            f"ctx.scale, or return early when it is 0); it moved it by up to {max_diff(zero, t):.3g}",
        )


def _zero_scale(case: Case) -> None:
    ideal = case.profile.model_copy(update={"dac": None, "adc": None, "noise_scale": 0.0})
    for name, model, x in layers(case.device):
        for training in (False, True):
            noisy = converted(case, model, training=training, profile=ideal)
            model.train(training)
            with torch.no_grad():
                y, clean = noisy(x), model(x)
            require(
                torch.equal(y, clean),
                f"{name} layer, {mode(training)} mode: noise_scale 0 "
                f"without DAC and ADC must give the float output exactly; it differs by up to {max_diff(y, clean):.3g}",
            )


def _seeds(case: Case) -> None:
    for name, model, x in layers(case.device):
        with torch.no_grad():
            first = converted(case, model, seed=1)(x)
            again = converted(case, model, seed=1)(x)
            other = converted(case, model, seed=2)(x)
        require(
            torch.equal(first, again),
            f"{name} layer: two chips programmed with seed 1 gave different outputs: {_DRAW_FROM_CTX}",
        )
        if case.deterministic:
            require(
                torch.equal(first, other),
                f"{name} layer: seeds 1 and 2 gave different outputs, but the kind was checked as deterministic",
            )
        else:
            require(
                not torch.equal(first, other),
                f"{name} layer: seeds 1 and 2 gave the same output; if the kind "
                "draws nothing at these magnitudes, check it with deterministic=True",
            )


def _chip_semantics(case: Case) -> None:
    stages = set(case.stages)
    for name, model, x in layers(case.device):
        noisy = converted(case, model, seed=3)
        with torch.no_grad():
            y1 = noisy(x)
            y2 = noisy(x)
            if "program" in stages:
                held = [w.clone() for w in chips(noisy)]
                require(bool(held), f"{name} layer: no programmed chip was held after a forward in eval mode")
                noisy(x)
                require(
                    all(torch.equal(a, b) for a, b in zip(chips(noisy), held)),
                    f"{name} layer: the programmed "
                    "weights changed between two forwards of one chip instance in eval mode",
                )
                program(noisy, seed=3)
                noisy(x)
                require(
                    all(torch.equal(a, b) for a, b in zip(chips(noisy), held)),
                    f"{name} layer: programming "
                    "seed 3 again gave other weights: program() must depend only on ctx.generator and the weights",
                )
                if stages == {"program"}:
                    require(
                        torch.equal(y1, y2),
                        f"{name} layer: a kind acting only when programming must give one "
                        "answer per chip instance, but two forwards differ",
                    )
            elif not case.deterministic:
                require(
                    not torch.equal(y1, y2),
                    f"{name} layer: per-read noise ({', '.join(case.stages)}) must be "
                    "drawn afresh on every forward, but two forwards in eval mode gave the same output",
                )
            if not case.deterministic:
                noisy.train()
                require(
                    not torch.equal(noisy(x), noisy(x)),
                    f"{name} layer: in training mode every draw must be "
                    "fresh each step, but two forwards gave the same output",
                )


def _gradients(case: Case) -> None:
    for name, model, x in layers(case.device):
        noisy = converted(case, model, training=True)
        x = x.clone().requires_grad_(True)
        y = noisy(x)
        require(
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
            if grad is None:
                raise AssertionError(f"{name} layer: no gradient reached {param_name} in training mode")
            require(bool(torch.isfinite(grad).all()), f"{name} layer: the gradient of {param_name} holds NaN or inf")
            require(bool(grad.abs().sum() > 0), f"{name} layer: the gradient of {param_name} is zero everywhere")
        require(
            x.grad is not None and bool(torch.isfinite(x.grad).all()),
            f"{name} layer: the input's gradient "
            "is missing or not finite; compute noise magnitudes from detached values",
        )


def _shape_dtype_device(case: Case) -> None:
    for device in case.devices:
        for dtype in (torch.float32, torch.float64):
            for name, model, x in layers(device, dtype):
                with torch.no_grad():
                    clean = model(x)
                for training in (False, True):
                    noisy = converted(case, model, training=training)
                    with torch.no_grad():
                        y = noisy(x)
                    where = f"{name} layer, {dtype}, {device}, {mode(training)} mode"
                    require(y.shape == clean.shape, f"{where}: output shape {tuple(y.shape)}, not {tuple(clean.shape)}")
                    require(y.dtype == dtype, f"{where}: output dtype {y.dtype}")
                    require(y.device == clean.device, f"{where}: output on {y.device}")
                    require(bool(torch.isfinite(y).all()), f"{where}: output holds NaN or inf")
                    for p in noisy.parameters():
                        require(
                            p.dtype == dtype and p.device == clean.device,
                            f"{where}: a parameter moved to {p.dtype} on {p.device}",
                        )


def _finite(case: Case) -> None:
    for name, model, x in layers(case.device):
        inputs = {"random": x, "large (x 1e4)": 1e4 * x, "zero": torch.zeros_like(x)}
        for training in (False, True):
            noisy = converted(case, model, training=training)
            for label, xi in inputs.items():
                with torch.no_grad():
                    y = noisy(xi)
                require(
                    bool(torch.isfinite(y).all()),
                    f"{name} layer, {label} inputs, {mode(training)} mode: the output holds NaN or inf",
                )
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        for training in (False, True):
            with torch.no_grad():
                y = converted(case, model, training=training)(x)
            require(
                bool(torch.isfinite(y).all()),
                f"{name} layer with zero weights, {mode(training)} mode: the output holds NaN or inf",
            )


BEHAVIOUR_CHECKS: dict[str, Callable[[Case], None]] = {
    "stage_effects": _stage_effects,  # each declared stage acts at scale 1, is a no-op at scale 0, draws only from ctx
    "zero_scale": _zero_scale,  # noise_scale 0 on a float path (no DAC, no ADC) is bitwise the float model
    "seeds": _seeds,  # one seed, one chip; another seed, another chip
    "chip_semantics": _chip_semantics,  # static noise held per chip instance, per-read noise fresh, training draws anew
    "gradients": _gradients,  # training mode: finite, non-zero gradient on the weight, finite on the input
    "shape_dtype_device": _shape_dtype_device,  # outputs keep the float model's shape, dtype and device (CPU, and CUDA if present)
    "finite": _finite,  # no NaN or inf on random, large and zero inputs, nor with zero weights
}
