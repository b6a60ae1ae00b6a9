"""The options the experiment commands share (train, eval, sweep, transfer, demo, results),
and the checks that turn them into what the library takes: single options, and groups
of options that travel together (:class:`RunOptions`, :class:`TrainingOptions`,
:class:`ModelOptions`), which a command takes through :func:`option_group`.

Nothing here imports torch at import time: the device check does, when it runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast, get_type_hints

import typer

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.data import DatasetSplits
    from hwprofiles.eval.trained import Trained
    from hwprofiles.executors import Executor
    from hwprofiles.results import ResultsStore
    from hwprofiles.train import TrainConfig

KEYWORD_ONLY = inspect.Parameter.KEYWORD_ONLY

OUT = Path("hwprofiles-out")


def check_device(value: str) -> str:
    """A device torch knows and this machine has, or a usage error that says which to use."""
    if value == "cpu":  # always there: no need to import torch (--print-config, study --check stay quick)
        return value
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise typer.BadParameter(f"'{value}' is not a torch device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise typer.BadParameter("CUDA is not available on this machine: use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise typer.BadParameter(f"there is no {value}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise typer.BadParameter(f"device type '{device.type}' is not supported: use cpu or cuda")
    return value


class Optimizer(str, Enum):
    adam = "adam"
    sgd = "sgd"


class Schedule(str, Enum):
    constant = "constant"
    ramp = "ramp"


class ExecutorName(str, Enum):
    local = "local"
    ray = "ray"


def profile_names(names: list[str] | None) -> list[str]:
    """The profiles named (every profile for none or ``all``); an unknown name is an
    error with close matches."""
    import hwprofiles

    if not names or names == ["all"]:
        return hwprofiles.list_profiles()
    for name in names:
        hwprofiles.load_profile(name)  # unknown names fail here, with close matches
    return names


# Options of more than one command or group.
RecalibrateBn = Annotated[
    bool,
    typer.Option(
        "--recalibrate-bn/--no-recalibrate-bn",
        help="Re-estimate batch-norm statistics on each chip instance from a few training batches before "
        "measuring it, as a chip can in its digital periphery (part of each result's key).",
    ),
]
DataRoot = Annotated[
    str | None, typer.Option("--data-root", help="A torchvision dataset root (or a folder of IDX files).")
]
Download = Annotated[
    bool, typer.Option("--download/--no-download", help="Download the dataset through torchvision (needs internet).")
]
Dataset = Annotated[str, typer.Option("--dataset", help="fashion-mnist, mnist, cifar10, cifar100, svhn or synthetic.")]
TestSubset = Annotated[
    int | None, typer.Option("--test-subset", help="Evaluate on a seeded random subset of N test samples.")
]
Samples = Annotated[
    int, typer.Option("--samples", "-k", min=1, help="Chip instances per evaluation (program(seed=i), i < K).")
]
ResultsDb = Annotated[
    Path | None,
    typer.Option(
        "--results",
        help="SQLite results database.",
        show_default="hwprofiles-out/results.sqlite or $HWPROFILES_RESULTS",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (for scripts) instead of a table.")]
JsonOut = Annotated[
    Path | None, typer.Option("--json-out", metavar="PATH", help="Also write the results as JSON to this file.")
]


def check_json_flag(as_json: bool, paths: Collection[Path] | None) -> None:
    """A usage error for ``--json FILE.json``: ``--json`` is a flag now, so the file would be
    read as a checkpoint; ``--json-out`` writes one."""
    named = [p for p in paths or () if p.suffix == ".json"]
    if as_json and named:
        raise typer.BadParameter(
            f"--json prints JSON on stdout and takes no file; to write {named[0]} use --json-out {named[0]}",
            param_hint="--json",
        )


Width = Annotated[float, typer.Option("--width", min=0.05, max=16.0, help="Width multiplier of zoo models.")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="HWPROFILES_STORAGE",
        help="Keep the run's checkpoints also here, a local path or any fsspec URL (s3://bucket/run1 needs s3fs): "
        "training tasks leave them there instead of sending them through Ray's object store, and a run "
        "finds finished ones there instead of training them again.",
    ),
]


# Option groups: options that travel together, declared once as the fields of a dataclass.
# A command names a group as one parameter (``run: opt.RunOptions``) and is decorated with
# ``@opt.option_group(opt.RunOptions)``: its options are the group's fields, and it is
# passed one RunOptions.


@dataclass(frozen=True)
class RunOptions:
    """Where an experiment runs, where it records its results, and whether it shows progress."""

    results: ResultsDb = None
    executor: Annotated[
        ExecutorName,
        typer.Option(
            "--executor",
            case_sensitive=False,
            help="Where evaluations (and transfer's training runs) run: local (this process) or ray (tasks on a Ray cluster).",
        ),
    ] = ExecutorName.local
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            envvar="HWPROFILES_RAY_ADDRESS",
            help="Ray cluster to join: auto (the one this machine is in) or HOST:PORT; none starts Ray on this machine.",
        ),
    ] = None
    device: Annotated[
        str, typer.Option("--device", callback=check_device, help="torch device: cpu, cuda or cuda:N.")
    ] = "cpu"
    quiet: Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", help="No progress bars.")] = False

    @property
    def progress(self) -> bool:
        """Whether to show progress bars (no ``--quiet``)."""
        return not self.quiet

    def runner(self) -> Executor:
        """The executor of ``--executor`` and ``--ray-address``, or a usage error."""
        from hwprofiles.executors import get_executor

        if self.ray_address and self.executor is not ExecutorName.ray:
            raise typer.BadParameter("--ray-address needs --executor ray", param_hint="--ray-address")
        return get_executor(self.executor.value, address=self.ray_address)

    def store(self) -> ResultsStore:
        """The results database of ``--results``."""
        from hwprofiles.results import ResultsStore

        return ResultsStore(self.results)


@dataclass(frozen=True)
class TrainingOptions:
    """The hyper-parameters and data of a training run (``train`` and ``transfer``): the
    fields of :class:`~hwprofiles.train.TrainConfig` that both commands take."""

    lr: Annotated[float, typer.Option("--lr")] = 1e-3
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 5
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128
    seed: Annotated[int, typer.Option("--seed")] = 0
    width: Width = 1.0
    train_subset: Annotated[
        int | None, typer.Option("--train-subset", help="Train on a seeded random subset of N samples.")
    ] = None
    test_subset: TestSubset = None
    data_root: DataRoot = None
    download: Download = False

    def config(self, **settings: Any) -> TrainConfig:
        """The run of these options and the command's own ``settings`` (model, dataset,
        method, ...); TrainConfig checks the values."""
        from hwprofiles.train import TrainConfig

        return TrainConfig(**{**asdict(self), **settings})

    def load_dataset(self, name: str) -> DatasetSplits:
        """Dataset ``name``, as these options select it (root, download, subsets, seed)."""
        from hwprofiles.data import load_dataset

        return load_dataset(
            name,
            root=self.data_root,
            download=self.download,
            train_subset=self.train_subset,
            test_subset=self.test_subset,
            seed=self.seed,
        )


@dataclass(frozen=True)
class ModelOptions:
    """The models an evaluation reads (``eval`` and ``sweep``): checkpoints, or ``--model``
    and ``--weights`` for a model trained elsewhere, and the data they are measured on; the
    parameters of :func:`hwprofiles.eval.trained.load_models`."""

    checkpoints: Annotated[
        list[Path] | None, typer.Argument(help="Checkpoints written by hwprofiles train.", show_default=False)
    ] = None
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Architecture of --weights: a zoo name (hwprofiles models), torchvision:NAME or module:factory.",
        ),
    ] = None
    weights: Annotated[
        list[Path] | None,
        typer.Option(
            "--weights",
            help="A state_dict of --model trained elsewhere (torch.save(model.state_dict(), path)); repeatable.",
        ),
    ] = None
    width: Width = 1.0
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset", help="Dataset of --weights.", show_default="the first checkpoint's, else fashion-mnist"
        ),
    ] = None
    test_subset: TestSubset = None
    data_root: DataRoot = None
    download: Download = False

    def load(self) -> tuple[DatasetSplits, list[Trained]]:
        """The data and the models (:func:`hwprofiles.eval.trained.load_models`), or a usage error."""
        from hwprofiles.eval.trained import load_models

        if not self.checkpoints and not self.weights:
            raise typer.BadParameter(
                "give checkpoints, or --model and --weights for a model trained elsewhere", param_hint="CHECKPOINTS"
            )
        if self.weights and not self.model:
            raise typer.BadParameter(
                "--weights needs --model: the architecture the weights belong to", param_hint="--model"
            )
        return load_models(**{**asdict(self), "checkpoints": self.checkpoints or [], "weights": self.weights or []})

    def test_set(self, splits: DatasetSplits) -> str:
        """The label of the test data the results are stored under."""
        from hwprofiles.eval.trained import test_set_id

        return test_set_id(splits, self.test_subset)


Command = TypeVar("Command", bound=Callable[..., Any])


def option_group(
    group: type[Any], *, omit: Collection[str] = (), defaults: Mapping[str, Any] | None = None
) -> Callable[[Command], Command]:
    """Give a command the options of ``group``, a dataclass whose fields carry Typer options.

    The command names the group as one parameter annotated ``group``; the decorated
    command's signature (which Typer reads) has the group's fields in that parameter's
    place, and the command is called with one ``group`` made of their values. Every
    parameter becomes keyword-only, as Typer passes them all by name.

    Args:
        group: the dataclass.
        omit: fields this command has no option for; they keep the dataclass's defaults.
        defaults: this command's defaults of fields, where they differ from the dataclass's.
    """
    defaults = dict(defaults or {})
    names = {f.name for f in fields(group)}
    unknown = (set(omit) | set(defaults)) - names
    if unknown:
        raise TypeError(f"{group.__name__} has no field {', '.join(sorted(unknown))}")
    hints = get_type_hints(group, include_extras=True)
    options = [
        inspect.Parameter(f.name, KEYWORD_ONLY, default=defaults.get(f.name, f.default), annotation=hints[f.name])
        for f in fields(group)
        if f.name not in omit
    ]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        slots = [p.name for p in signature.parameters.values() if p.annotation is group]
        if len(slots) != 1:
            raise TypeError(f"{command.__qualname__} needs one parameter annotated {group.__name__}")
        parameters: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            parameters += options if p.name in slots else [p.replace(kind=KEYWORD_ONLY)]
        signature = signature.replace(parameters=parameters)  # a field named like a parameter fails here

        @functools.wraps(command)
        def with_group(**kwargs: Any) -> Any:
            kwargs[slots[0]] = group(**{o.name: kwargs.pop(o.name) for o in options})
            return command(**kwargs)

        with_group.__signature__ = signature  # type: ignore[attr-defined]
        with_group.__annotations__ = {p.name: p.annotation for p in parameters}
        with_group.__annotations__["return"] = signature.return_annotation
        return cast(Command, with_group)

    return decorate
