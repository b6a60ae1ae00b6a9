"""Tensor implementations of the noise kinds, one module per device family.

:class:`NoiseKind` is the interface the noise engine calls; see its docstring for
the stages and the order they run in.
"""

from hwprofiles.noise.base import STAGES, NoiseKind, StageContext, WeightState

__all__ = ["STAGES", "NoiseKind", "StageContext", "WeightState"]
