"""The README's code runs as written: its Python API tour (as a reader would copy it: it
defines its own data), its evaluation example and its plugin example, on tiny inputs this
test makes (the names the text around those examples introduces: ``train_batches``,
``test_batches``)."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

import hwprofiles

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```python\n(?P<body>.*?)^```\s*$", re.S | re.M)


def run_block(text: str, names: dict[str, object]) -> dict[str, object]:
    """Run the README block containing ``text`` as a module of its own (pydantic resolves
    a model's annotations in its module), with ``names`` defined first."""
    module = types.ModuleType("readme_example")
    module.__dict__.update(names)
    sys.modules[module.__name__] = module
    try:
        exec(compile(block_with(text), str(README), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module.__dict__


def python_blocks() -> list[str]:
    return [m["body"] for m in FENCE.finditer(README.read_text(encoding="utf-8"))]


def block_with(text: str) -> str:
    found = [b for b in python_blocks() if text in b]
    assert len(found) == 1, f"expected one README python block with {text!r}, found {len(found)}"
    return found[0]


@pytest.fixture
def data_names() -> dict[str, object]:
    gen = torch.Generator().manual_seed(0)

    def batch(n: int = 16) -> torch.Tensor:
        return torch.rand(n, 1, 28, 28, generator=gen)

    labelled = [(batch(), torch.randint(0, 10, (16,), generator=gen)) for _ in range(3)]
    return {
        "train_batches": [batch() for _ in range(4)],
        "test_batches": labelled,
    }


def test_the_python_api_tour_runs_and_does_what_its_comments_say():
    names = run_block("hwprofiles.to_noisy(model", {})  # every name it uses, it defines
    model, noisy, clean, qat = names["model"], names["noisy"], names["clean"], names["qat"]
    assert isinstance(noisy, torch.nn.Module) and not noisy.training  # noisy.eval() ran
    # "a noisy copy; model stays as it is"; to_clean gives the float weights back untouched
    assert type(model[0]) is torch.nn.Conv2d and type(noisy[0]) is not torch.nn.Conv2d
    assert noisy[0].weight is not model[0].weight and torch.equal(noisy[0].weight, model[0].weight)
    assert torch.equal(clean[0].weight, model[0].weight) and type(clean[3]) is torch.nn.Linear
    assert type(qat[3]) is not torch.nn.Linear  # the QAT baseline swapped the matrix layers


def test_the_evaluation_example_gives_an_interval_over_chips(data_names):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    names = run_block("hwprofiles.evaluate(", {**data_names, "hwprofiles": hwprofiles, "model": model})
    result = names["result"]
    assert len(result.accuracies) == 10 and result.ci_low <= result.mean <= result.ci_high
    assert set(result.hashes) >= {"model", "profile", "data", "calibration"}


def test_the_plugin_example_registers_its_noise_kind_and_profile_folder():
    names = run_block("hwprofiles_register_noise_models", {"PATH_TO_MY_PROFILES": "/profiles/of/mine"})

    class Recorder:
        def __init__(self) -> None:
            self.added: list[tuple[object, object]] = []

        def add(self, entry_model: object, implementation: object) -> None:
            self.added.append((entry_model, implementation))

    recorder = Recorder()
    names["hwprofiles_register_noise_models"](recorder)
    ((entry_model, implementation),) = recorder.added
    assert entry_model.model_fields["kind"].default == "my_noise" and implementation == "my_package.noise:MyNoiseKind"
    assert entry_model(sigma=0.5).sigma == 0.5
    assert names["hwprofiles_profile_paths"]() == ["/profiles/of/mine"]
