"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

import hwprofiles


def make_profile(noise: list[dict[str, Any]], **fields: Any) -> hwprofiles.Profile:
    """A validated profile holding ``noise``; no DAC, ADC or tiles unless given."""
    data = {"name": "under-test", "technology": "generic", "description": "test profile", "noise": noise}
    return hwprofiles.parse_profile({**data, **fields})


def forward_on_chip(model: Any, x: Any, seed: int) -> Any:
    """``model(x)`` on chip instance ``seed`` (noisy models) in eval mode; run in another
    process by the pickling tests, so it lives in a module that process can import."""
    import torch

    try:
        hwprofiles.profile_of(model)
    except TypeError:
        pass  # a float model: no chip to program
    else:
        hwprofiles.program(model, seed=seed)
    with torch.no_grad():
        return model.eval()(x)
