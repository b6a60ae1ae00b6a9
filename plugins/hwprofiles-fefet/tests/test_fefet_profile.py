"""The installed plugin: found through its entry point, its profile loads and works, its kinds conform."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hwprofiles_fefet.noise import retention_decades

import hwprofiles
from hwprofiles.plugins import plugin_infos
from hwprofiles.profiles import profile_library
from hwprofiles.registry import noise_models
from hwprofiles.testing import check_noise_kind, parametrize_kinds

PROFILE = "fefet-mlc-3bit"


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread avoids thread-pool overhead on a loaded CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_plugin_comes_through_its_entry_point() -> None:
    (info,) = [i for i in plugin_infos() if i.name == "fefet"]
    assert (info.distribution, info.module) == ("hwprofiles-fefet", "hwprofiles_fefet.plugin")
    assert info.hooks == ["hwprofiles_profile_paths", "hwprofiles_register_noise_models"]
    assert sorted(k for k, m in noise_models().items() if m.owner == "fefet") == ["fefet_multilevel", "fefet_retention"]
    assert profile_library()[PROFILE].provider == "fefet"


def test_the_command_line_lists_the_plugin_its_kinds_and_its_profile() -> None:
    def run(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "hwprofiles", *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    plugins = run("plugins")
    row = next(line for line in plugins.splitlines() if line.startswith("│ fefet "))
    assert "hwprofiles-fefet" in row and "fefet_multilevel, fefet_retention" in row
    schema = json.loads(run("profiles", "schema"))
    mapping = schema["properties"]["noise"]["items"]["discriminator"]["mapping"]
    assert {"fefet_multilevel", "fefet_retention"} <= set(mapping)
    assert PROFILE in run("profiles", "list")


def test_listing_and_loading_the_profile_never_imports_torch() -> None:
    code = (
        "import sys, hwprofiles; hwprofiles.list_profiles(); hwprofiles.load_profile('fefet-mlc-3bit'); "
        "print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "False\n"), proc.stderr


def test_the_profile_loads_and_cites_its_sources() -> None:
    profile = hwprofiles.load_profile(PROFILE)
    assert profile.technology == "fefet"
    assert profile.kinds() == ["fefet_multilevel", "fefet_retention"]
    assert len(profile.references) >= 4 and all(ref.supports for ref in profile.references)
    assert profile.description.count("*(unsure") >= 3, "guessed numbers are marked"
    assert hwprofiles.parse_profile(profile.model_dump(mode="json")) == profile


def test_the_profile_description_matches_its_numbers() -> None:
    profile = hwprofiles.load_profile(PROFILE)
    levels, retention = profile.noise
    assert levels.bits_per_cell == 3 and "3 bits" in profile.description
    loss = retention.rate_per_decade * retention_decades(profile.t_inference_s, retention.t0_s)
    assert profile.t_inference_s == 86_400 and "after a day weights have shrunk by about 10%" in profile.description
    assert math.isclose(loss, 0.10, abs_tol=0.005)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 3 * 3, 3),
    )


def synthetic_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 1, 6, 6, generator=g)
    teacher = torch.randn(36, 3, generator=g)
    return x, (x.flatten(1) @ teacher).argmax(dim=1)


def test_to_noisy_under_the_profile_draws_one_chip_per_seed() -> None:
    x, _ = synthetic_data()
    model = small_model().eval()

    def chip(seed: int) -> torch.Tensor:
        noisy = hwprofiles.to_noisy(model, PROFILE, calibration=[x]).eval()
        hwprofiles.program(noisy, seed=seed)
        with torch.no_grad():
            return noisy(x)

    with torch.no_grad():
        clean = model(x)
    first = chip(1)
    assert first.shape == clean.shape and torch.isfinite(first).all()
    assert not torch.equal(first, clean)
    assert torch.equal(first, chip(1)) and not torch.equal(first, chip(2))


def test_noise_injection_training_under_the_profile_learns() -> None:
    x, labels = synthetic_data()
    model = hwprofiles.to_noisy(small_model(), PROFILE).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


@parametrize_kinds(owner="fefet")
def test_the_kinds_pass_the_conformance_kit(kind: str) -> None:
    report = check_noise_kind(kind)
    assert not report.skipped


@pytest.mark.parametrize("t_inference_s", [1.0, 86_400.0])
def test_the_retention_kind_conforms_at_any_time(t_inference_s: float) -> None:
    check_noise_kind("fefet_retention", {"compensation": True}, profile_overrides={"t_inference_s": t_inference_s})
