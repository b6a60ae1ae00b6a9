"""Pydantic models of the profile entries of the built-in noise kinds.

These modules import no torch: they are what a profile file *says*. What a kind
*does* to tensors lives in :mod:`hwprofiles.noise`.
"""

from hwprofiles.entries.base import NoiseEntry, VarianceAware

__all__ = ["NoiseEntry", "VarianceAware"]
