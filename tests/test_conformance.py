"""The conformance kit: every registered kind passes it, and it catches kinds that break the contract.

Plugin authors run :func:`hwprofiles.testing.check_noise_kind` on their kinds; the
built-in kinds (and any installed plugin's) go through the same checks here.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
import torch
from pydantic import Field

import hwprofiles
from hwprofiles import NoiseEntry
from hwprofiles.noise import NoiseKind, StageContext
from hwprofiles.registry import register_noise_model
from hwprofiles.testing import CHECKS, ConformanceError, check_noise_kind, parametrize_kinds

# Small tensors: one thread avoids thread-pool overhead, which dominates on a loaded CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

# Values for fields a kind requires, or whose defaults switch a stage off (each declared
# stage must act at noise_scale 1). Every other kind is checked with its defaults.
SAMPLE_ENTRIES: dict[str, dict[str, Any]] = {
    "gaussian_additive": {"sigma": 0.1},
    "gaussian_multiplicative": {"sigma": 0.1},
    "gaussian_combined": {"amplitude": 0.1, "ratio": 0.5},
    "output_noise": {"sigma": 0.04},
    "weight_read_noise": {"sigma": 0.02},
    "sram_column_noise": {"sigma_percent_fs": 0.39},
    "stuck_at": {"p_sa0": 0.02, "p_sa1": 0.02},
    "photonic_phase": {"phase_noise_rad": 0.05},  # its read stage is off by default
}
# Profile fields a kind needs: rram_relaxation has data at 1 s, 1 day and 2 days only.
SAMPLE_PROFILES: dict[str, dict[str, Any]] = {
    "rram_relaxation": {"t_inference_s": 86_400},
    "output_noise": {"adc": {"bits": 8, "bound": 10.0}, "tile": {"rows": 8, "cols": 8}},
}


def test_the_sample_tables_name_registered_kinds() -> None:
    assert set(SAMPLE_ENTRIES) | set(SAMPLE_PROFILES) <= set(hwprofiles.list_noise_models())


@parametrize_kinds()
def test_every_registered_kind_conforms(kind: str) -> None:
    report = check_noise_kind(kind, SAMPLE_ENTRIES.get(kind), profile_overrides=SAMPLE_PROFILES.get(kind))
    assert report.passed == list(CHECKS)
    assert report.devices[0] == "cpu"
    assert f"noise kind '{kind}'" in str(report)


def test_the_kit_runs_on_an_explicit_device_and_records_skips() -> None:
    report = check_noise_kind(
        "weight_read_noise", {"sigma": 0.02}, device=torch.device("cpu"), skip={"finite": "checked elsewhere"}
    )
    assert "finite" not in report.passed
    assert report.skipped == {"finite": "checked elsewhere"}
    assert "skip  finite: checked elsewhere" in str(report)
    with pytest.raises(ValueError, match="unknown checks"):
        check_noise_kind("weight_read_noise", {"sigma": 0.02}, skip={"finit": "typo"})


def test_parametrize_kinds_filters_by_pattern_and_plugin() -> None:
    mark = parametrize_kinds("pcm_*", owner="builtin")
    assert mark.args == ("kind", ["pcm_drift", "pcm_programming", "pcm_read_1f"])
    assert parametrize_kinds("stuck_at", argname="name").args == ("name", ["stuck_at"])
    with pytest.raises(ValueError, match="no registered noise kind matches pattern 'pcm_\\*' and plugin 'nobody'"):
        parametrize_kinds("pcm_*", owner="nobody")


def test_a_kind_missing_required_values_is_told_how_to_pass_them() -> None:
    with pytest.raises(ConformanceError) as info:
        check_noise_kind("gaussian_additive")
    assert info.value.check == "setup"
    assert "noise.0.sigma: Field required" in str(info.value)
    assert "Pass values for required fields as `entry`" in str(info.value)


def test_the_check_of_a_deterministic_kind_is_refused_for_a_random_one() -> None:
    with pytest.raises(ConformanceError) as info:
        check_noise_kind("weight_read_noise", {"sigma": 0.02}, deterministic=True)
    assert info.value.check == "seeds"
    assert "seeds 1 and 2 gave different outputs, but the kind was checked as deterministic" in str(info.value)


# -- broken kinds: the kit must name what each one gets wrong -------------------------------------
class BrokenEntry(NoiseEntry):
    kind: Literal["broken_noise"] = "broken_noise"
    sigma: float = Field(0.1, ge=0, le=10, description="Std of the added noise, in activation units.")


class GlobalGenerator(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return y + self.entry.sigma * ctx.scale * torch.randn_like(y)  # torch's global generator


class IgnoresScale(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return y + self.entry.sigma * ctx.randn(y.shape, like=y)


class UndeclaredStage(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return y + self.entry.sigma * ctx.scale * ctx.randn(y.shape, like=y)

    def read(self, w: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return w


class InPlace(NoiseKind):
    stages = frozenset({"read"})

    def read(self, w: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return w.add_(self.entry.sigma * ctx.scale * ctx.randn(w.shape, like=w))


class NanAtZero(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sign = y.detach() / y.detach().abs()  # 0/0 at a zero output
        return y + sign * self.entry.sigma * ctx.scale * ctx.randn(y.shape, like=y)


class OwnFixedGenerator(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        g = torch.Generator(device=y.device).manual_seed(0)  # ignores the chip seed
        return y + self.entry.sigma * ctx.scale * torch.randn(y.shape, generator=g, device=y.device, dtype=y.dtype)


class CutsTheGraph(NoiseKind):
    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return y.detach() + self.entry.sigma * ctx.scale * ctx.randn(y.shape, like=y)


class ChangesShape(NoiseKind):
    stages = frozenset({"tile_outputs"})

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return (y + self.entry.sigma * ctx.scale * ctx.randn(y.shape, like=y)).double()


@pytest.mark.usefixtures("clean_hwprofiles")
@pytest.mark.parametrize(
    "implementation, check, says",
    [
        (GlobalGenerator, "stage_effects", "never from torch's global generator"),
        (IgnoresScale, "stage_effects", "at noise_scale 0 outputs() must leave its tensor unchanged"),
        (UndeclaredStage, "stages_declared", "overrides read() but does not declare 'read'"),
        (InPlace, "stage_effects", "read() changed its input tensor in place"),
        (NanAtZero, "finite", "with zero weights, eval mode: the output holds NaN or inf"),
        (OwnFixedGenerator, "seeds", "seeds 1 and 2 gave the same output"),
        (CutsTheGraph, "gradients", "the output does not require grad in training mode"),
        (ChangesShape, "stage_effects", "tile_outputs() returned shape (4, 8), torch.float64"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_the_kit_names_what_a_broken_kind_gets_wrong(implementation: type, check: str, says: str) -> None:
    register_noise_model(BrokenEntry, implementation, owner="lab")
    with pytest.raises(ConformanceError) as info:
        check_noise_kind("broken_noise")
    assert (info.value.kind, info.value.check) == ("broken_noise", check)
    message = str(info.value)
    assert message.startswith(f"noise kind 'broken_noise' (plugin 'lab') fails the '{check}' check: ")
    assert says in message
    assert isinstance(info.value, AssertionError), "pytest shows it as a failed assertion"


@pytest.mark.usefixtures("clean_hwprofiles")
def test_the_kit_asks_for_field_descriptions_and_bounds() -> None:
    class Undocumented(NoiseEntry):
        kind: Literal["undocumented_noise"] = "undocumented_noise"
        sigma: float = 0.1

    class Unbounded(NoiseEntry):
        kind: Literal["unbounded_noise"] = "unbounded_noise"
        sigma: float | None = Field(0.1, ge=0, description="Std of the added noise.")

    register_noise_model(Undocumented, GlobalGenerator, owner="lab")
    register_noise_model(Unbounded, GlobalGenerator, owner="lab")
    with pytest.raises(ConformanceError, match="field 'sigma' has no description"):
        check_noise_kind("undocumented_noise")
    with pytest.raises(ConformanceError, match="field 'sigma' is a number without a lower and an upper bound"):
        check_noise_kind("unbounded_noise")


@pytest.mark.usefixtures("clean_hwprofiles")
def test_the_kit_refuses_an_implementation_that_is_not_a_noise_kind() -> None:
    register_noise_model(BrokenEntry, "collections:OrderedDict", owner="lab")
    with pytest.raises(ConformanceError, match="is not a hwprofiles.noise.NoiseKind subclass") as info:
        check_noise_kind("broken_noise")
    assert info.value.check == "setup"
