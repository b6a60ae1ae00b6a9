"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typing import Any

import hwprofiles


def make_profile(noise: list[dict[str, Any]], **fields: Any) -> hwprofiles.Profile:
    """A validated profile holding ``noise``; no DAC, ADC or tiles unless given."""
    data = {"name": "under-test", "technology": "generic", "description": "test profile", "noise": noise}
    return hwprofiles.parse_profile({**data, **fields})
