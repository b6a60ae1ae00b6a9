"""What a training run is: every argument, stored in its checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from hwprofiles.errors import HwProfilesError

METHODS = ("clean", "qat", "qat-learned", "nit", "vant")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "ramp")
MAX_WIDTH = 16.0  # wider zoo models do not fit in memory at any batch size worth training
Method = Literal["clean", "qat", "qat-learned", "nit", "vant"]


@dataclass
class TrainConfig:
    """A training run.

    Attributes:
        model: a name from ``hwprofiles.models.list_models()`` or ``torchvision:NAME``.
        dataset: a dataset name (``fashion-mnist``, ``mnist``, ``cifar10``, ...).
        method: clean, qat (constant activation scale), qat-learned (LSQ-style),
            nit (noise-injection training under ``profile``) or vant (variance-aware NIT).
        profile: the training profile of nit/vant.
        noise_scale: the profile's noise scale during training (default: the profile's own).
        schedule: constant, or ramp (linear from 0 over ``ramp_epochs`` epochs).
        bits, act_scale: QAT resolution and constant activation step.
        alpha, theta: VANT's per-sample sigma = alpha sigma + theta |z|.
    """

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    method: Method = "clean"
    profile: str | None = None
    noise_scale: float | None = None
    schedule: Literal["constant", "ramp"] = "constant"
    ramp_epochs: int = 1
    bits: int = 8
    act_scale: float = 1.0
    alpha: float = 0.45
    theta: float = 0.66
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 5
    batch_size: int = 128
    seed: int = 0
    width: float = 1.0
    train_subset: int | None = None
    test_subset: int | None = None
    data_root: str | None = None
    download: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise HwProfilesError(f"unknown training method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.method in ("nit", "vant") and not self.profile:
            raise HwProfilesError(f"method '{self.method}' trains under a profile: pass --profile NAME")
        for field_name, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, field_name) not in choices:
                raise HwProfilesError(
                    f"unknown {field_name} '{getattr(self, field_name)}'; choose one of {', '.join(choices)}"
                )
        if not 0 < self.width <= MAX_WIDTH:
            raise HwProfilesError(
                f"width {self.width} is out of range: give a multiplier above 0 and at most {MAX_WIDTH:g}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.ramp_epochs < 1:
            raise HwProfilesError("epochs, batch size and ramp epochs must be at least 1")
        if not self.lr > 0:
            raise HwProfilesError("the learning rate must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def label(self) -> str:
        """A short name for tables: clean, qat, nit:pcm-joshi2020, ..."""
        if self.method in ("nit", "vant"):
            return f"{self.method}:{self.profile}"
        return self.method
