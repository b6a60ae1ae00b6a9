"""What a training run is: every argument (stored in its checkpoint), and the training
methods a run can name.

A training method is an object (:class:`TrainingMethod`) registered under a name: the
built-ins (clean, qat, qat-learned, nit, vant; see :mod:`hwprofiles.train.methods`) and
those plugins add through the ``hwprofiles_register_training_methods`` hook. A run
stores only the name, so checkpoints stay plain data.

    >>> from hwprofiles.train import TrainConfig
    >>> TrainConfig(method="nit", profile="pcm-joshi2020").label
    'nit:pcm-joshi2020'
    >>> TrainConfig(method="nitt")
    Traceback (most recent call last):
    ...
    hwprofiles.errors.UnknownTrainingMethodError: unknown training method 'nitt'. Did you mean 'nit'? ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from hwprofiles import plugins
from hwprofiles.errors import DuplicateTrainingMethodError, HwProfilesError, UnknownTrainingMethodError
from hwprofiles.named_registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torch.nn as nn

BUILTIN_METHODS = {
    "clean": "hwprofiles.train.methods:CLEAN",
    "qat": "hwprofiles.train.methods:QAT",
    "qat-learned": "hwprofiles.train.methods:QAT_LEARNED",
    "nit": "hwprofiles.train.methods:NIT",
    "vant": "hwprofiles.train.methods:VANT",
}
"""The built-in training methods, by name (imported on first use)."""

METHODS = tuple(BUILTIN_METHODS)
"""The names of the built-in training methods (:func:`list_training_methods` adds plugins')."""

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "ramp")
MAX_WIDTH = 16.0  # wider zoo models do not fit in memory at any batch size worth training


@dataclass(frozen=True)
class NoiseSchedule:
    """The noise scale of each training step: ``target``, reached by a linear ramp from 0
    over the first ``ramp_steps`` steps (none: constant from the first step).

    >>> NoiseSchedule(2.0, ramp_steps=4).at(1)
    1.0
    """

    target: float
    ramp_steps: int = 0

    def at(self, step: int) -> float:
        """The noise scale of step ``step`` (counted from 0 over the whole run)."""
        if not self.ramp_steps:
            return self.target
        return self.target * min(1.0, (step + 1) / self.ramp_steps)


class TrainingMethod:
    """How one training method trains a model, and how its checkpoints are read back.

    The base class trains the float model as it is, without noise. A method registered
    through the ``hwprofiles_register_training_methods`` hook subclasses it and
    overrides what differs.
    """

    def check(self, config: TrainConfig) -> None:
        """Refuse a run this method cannot train (raise :class:`~hwprofiles.HwProfilesError`)."""

    def label(self, config: TrainConfig) -> str:
        """The run's short name in tables and checkpoint file names."""
        return config.method

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        """The model that is trained, made from a freshly built float ``model``."""
        return model

    def noise_schedule(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int) -> NoiseSchedule | None:
        """The noise scale of each step of a model :meth:`prepare` made (None: it trains without noise).

        A method that trains under noise gets a new chip drawn each epoch, and the test
        accuracy of each epoch measured on one fixed chip.
        """
        return None

    def select_noise(self, model: nn.Module, config: TrainConfig, step: int | None, seed: int) -> None:
        """Set the noise of the next training step of a model :meth:`prepare` made, for a method
        whose noise changes between steps (only called when :meth:`noise_schedule` gives one).

        ``step`` counts steps over the whole run; ``seed`` is the epoch's noise seed (each
        rank's own under data-parallel training). ``step`` None: the noise under which the
        per-epoch test accuracy is measured. The default changes nothing.
        """

    def for_evaluation(self, model: nn.Module, state_dict: dict[str, torch.Tensor], config: TrainConfig) -> nn.Module:
        """A float-structured model holding a checkpoint's weights, ready for :func:`hwprofiles.to_noisy`.

        The default loads ``state_dict`` into the float ``model``, without the input bounds
        that analog products calibrated in training (the evaluation profile calibrates its own).
        """
        from hwprofiles.nn.mvm import strip_calibration

        model.load_state_dict(strip_calibration(state_dict))
        return model


class TrainingMethodRegistrar:
    """What the ``hwprofiles_register_training_methods`` hook receives: it records the owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def add(self, name: str, method: TrainingMethod | str) -> None:
        """Register ``method`` (a :class:`TrainingMethod`, or ``"module:attr"`` naming one) under ``name``."""
        register_training_method(name, method, owner=self.owner)


def _load(registry: Registry[TrainingMethod]) -> None:
    """The built-ins, then every plugin's methods; a hook that raises fails the load, naming its plugin."""
    for name, target in BUILTIN_METHODS.items():
        registry.register(name, target, owner="builtin")
    plugins.register_from_each("hwprofiles_register_training_methods", TrainingMethodRegistrar)


_methods: Registry[TrainingMethod] = Registry(
    "training method",
    loader=_load,
    unknown_error=UnknownTrainingMethodError,
    duplicate_error=DuplicateTrainingMethodError,
)
plugins.on_reset(_methods.reset)  # a new plugin manager may bring other methods


def training_methods() -> Registry[TrainingMethod]:
    """The registry of training methods, filled from the plugins on first use (and again
    after the plugin manager is reset)."""
    return _methods


def get_training_method(name: str) -> TrainingMethod:
    """The training method registered as ``name``.

    Raises:
        UnknownTrainingMethodError: no such method; the message names close matches and valid names.
    """
    return training_methods().get(name)


def list_training_methods(pattern: str = "*") -> list[str]:
    """Sorted names of the registered training methods matching an ``fnmatch`` pattern.

    >>> list_training_methods("qat*")
    ['qat', 'qat-learned']
    """
    return training_methods().names(pattern)


def register_training_method(name: str, method: TrainingMethod | str, *, owner: str = "user") -> None:
    """Register ``method`` (or ``"module:attr"`` naming it) under ``name``.

    Raises:
        DuplicateTrainingMethodError: another owner or method already has the name.
    """
    training_methods().register(name, method, owner=owner)


@dataclass
class TrainConfig:
    """A training run.

    Attributes:
        model: a name from ``hwprofiles.models.list_models()`` or ``torchvision:NAME``.
        dataset: a dataset name (``fashion-mnist``, ``mnist``, ``cifar10``, ...).
        method: a registered training method: clean, qat (constant activation scale),
            qat-learned (LSQ-style), nit (noise-injection training under ``profile``),
            vant (variance-aware NIT), or one a plugin adds.
        profile: the training profile of nit/vant; several as ``NAME,NAME:WEIGHT,...`` or
            ``all`` (each step's noise from one, sampled by weight).
        noise_scale: the profile's noise scale during training (default: the profile's own).
        schedule: constant, or ramp (linear from 0 over ``ramp_epochs`` epochs).
        bits, act_scale: QAT resolution and constant activation step.
        alpha, theta: VANT's per-sample sigma = alpha sigma + theta |z|.
    """

    model: str = "lenet5"
    dataset: str = "fashion-mnist"
    method: str = "clean"
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
        self.training_method.check(self)
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

    @property
    def training_method(self) -> TrainingMethod:
        """The :class:`TrainingMethod` registered as ``method``."""
        return get_training_method(self.method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def label(self) -> str:
        """A short name for tables: clean, qat, nit:pcm-joshi2020, ..."""
        return self.training_method.label(self)
