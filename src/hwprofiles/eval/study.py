"""A study grid: transfer matrices over several models and training seeds, described in one
YAML file instead of flags spread over a script (``hwprofiles study grid.yaml``).

Each (model, training seed) of the grid is one :func:`hwprofiles.eval.transfer.run_transfer`:
clean, QAT and NIT under each training profile are trained (or their finished checkpoints
reused), then every row is evaluated under every evaluation profile over K chip instances
(seeds 0..K-1), each chip instance stored in the results database. The study writes each
matrix to ``OUT/MODEL-sSEED/`` and, over the training seeds, the mean and spread of every
cell to ``OUT/study.json`` and ``OUT/study.md``. The grid's format: docs/study-grid.example.yaml.
"""

from __future__ import annotations

import difflib
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hwprofiles.errors import ConfigFileError
from hwprofiles.untrusted import printable, read_yaml_file

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.grid import GridStats
    from hwprofiles.eval.transfer_report import TransferResult
    from hwprofiles.executors import Executor
    from hwprofiles.results import ResultsStore
    from hwprofiles.storage import Storage


class StudyTraining(BaseModel):
    """The hyper-parameters and data every training run of the study shares (fields of
    :class:`~hwprofiles.train.TrainConfig`)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    epochs: int = Field(3, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(128, ge=1)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    width: float = Field(1.0, gt=0, le=16)
    train_subset: int | None = Field(None, ge=1)
    test_subset: int | None = Field(None, ge=1)
    data_root: str | None = None
    download: bool = False


class StudyGrid(BaseModel):
    """What a study varies (lists) and what it holds fixed; the arguments of
    :func:`~hwprofiles.eval.transfer.run_transfer`, with lists where the study varies."""

    model_config = ConfigDict(extra="forbid", strict=True)

    models: list[str] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1)
    dataset: str = "fashion-mnist"
    train_profiles: list[str] | None = Field(None, min_length=1)
    eval_profiles: list[str] | None = Field(None, min_length=1)
    samples: int = Field(5, ge=1)
    scale_mode: Literal["published", "matched"] = "published"
    target_drop: float = Field(0.1, ge=0.01, le=0.9)
    training: StudyTraining = Field(default_factory=StudyTraining)  # type: ignore[arg-type]


def _field_error(error: Any, source: str) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        section = StudyTraining if error["loc"][:1] == ("training",) else StudyGrid
        close = difflib.get_close_matches(str(error["loc"][-1]), list(section.model_fields), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return printable(f"{source}: {where}: unknown field{hint} (the fields: docs/study-grid.example.yaml)")
    return printable(f"{source}: {where}: {error['msg']}")


def parse_study_grid(data: Any, source: str = "<grid>") -> StudyGrid:
    """Validate a study grid's data (a mapping, as read from YAML).

    Raises:
        ConfigFileError: one line per problem, each naming ``source`` and the field.
    """
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"{source}: a study grid is a mapping of fields (models: [...], seeds: [...]), "
            f"not {'an empty file' if data is None else 'a ' + type(data).__name__}"
        )
    try:
        grid = StudyGrid.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError("\n".join(_field_error(e, source) for e in exc.errors())) from None
    for name in ("models", "seeds", "train_profiles", "eval_profiles"):
        values = getattr(grid, name) or []
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ConfigFileError(printable(f"{source}: {name}: {', '.join(repeated)} listed twice"))
    return grid


def load_study_grid(path: str | Path) -> StudyGrid:
    """The study grid in the YAML file at ``path`` (read with the safe, bounded reader).

    Raises:
        ConfigFileError: the file cannot be read, or a field is unknown or of the wrong type.
    """
    return parse_study_grid(read_yaml_file(path, error=ConfigFileError), printable(str(path)))


@dataclass
class StudyResult:
    """The transfer matrix of each (model, training seed), and their spread over seeds."""

    grid: StudyGrid
    matrices: dict[tuple[str, int], TransferResult]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per model: rows, columns, and each cell's mean accuracy over seeds and its standard
        deviation (None for one seed); a cell that failed in any seed is NaN."""
        out: dict[str, dict[str, Any]] = {}
        for model in self.grid.models:
            runs = [self.matrices[(model, seed)] for seed in self.grid.seeds]
            rows, cols = runs[0].rows, runs[0].cols
            per_seed = [run.accuracy() for run in runs]
            means = [
                [statistics.fmean(acc[i][j] for acc in per_seed) for j in range(len(cols))] for i in range(len(rows))
            ]
            spread = [
                [statistics.stdev(acc[i][j] for acc in per_seed) if len(runs) > 1 else None for j in range(len(cols))]
                for i in range(len(rows))
            ]
            out[model] = {"rows": rows, "cols": cols, "seeds": list(self.grid.seeds), "mean": means, "std": spread}
        return out

    def to_dict(self) -> dict[str, Any]:
        """The grid, every matrix (as ``transfer.json`` holds it) and the summary over seeds."""
        return {
            "grid": self.grid.model_dump(mode="json"),
            "runs": [
                {"model": model, "seed": seed, "matrix": json.loads(result.to_json())}
                for (model, seed), result in self.matrices.items()
            ],
            "summary": self.summary(),
        }

    def to_markdown(self) -> str:
        """One table per model: each cell's mean accuracy over training seeds (and its spread)."""
        lines: list[str] = []
        for model, entry in self.summary().items():
            seeds = ", ".join(map(str, entry["seeds"]))
            lines += [f"### {model}: mean accuracy over training seeds {seeds}", ""]
            lines.append("| trained \\ evaluated | " + " | ".join(entry["cols"]) + " |")
            lines.append("|---" * (len(entry["cols"]) + 1) + "|")
            for i, row in enumerate(entry["rows"]):
                cells = [_cell(entry["mean"][i][j], entry["std"][i][j]) for j in range(len(entry["cols"]))]
                lines.append(f"| {row} | " + " | ".join(cells) + " |")
            lines.append("")
        return "\n".join(lines)

    def write(self, out_dir: str | Path) -> list[Path]:
        """``study.json`` and ``study.md`` in ``out_dir``."""
        from hwprofiles.io import write_text

        out = Path(out_dir)
        return [
            write_text(out / "study.json", json.dumps(self.to_dict(), indent=2)),
            write_text(out / "study.md", self.to_markdown()),
        ]


def _cell(mean: float, std: float | None) -> str:
    if math.isnan(mean):
        return "failed"
    return f"{mean:.4f}" if std is None else f"{mean:.4f} ± {std:.4f}"


def check_names(grid: StudyGrid, source: str = "<grid>") -> None:
    """Every model and profile the grid names exists (checked before anything is trained).

    Raises:
        ConfigFileError: a name is not known; the message names ``source``, the field and
            close matches.
    """
    from hwprofiles.errors import UnknownNameError
    from hwprofiles.models import get_model_entry
    from hwprofiles.profiles import load_profile

    # torchvision:NAME and module:factory are checked when built
    checks: list[tuple[str, str, Callable[[str], object]]] = [
        ("models", name, get_model_entry) for name in grid.models if ":" not in name
    ]
    for field in ("train_profiles", "eval_profiles"):
        checks += [(field, name, load_profile) for name in getattr(grid, field) or []]
    for field, name, check in checks:
        try:
            check(name)
        except UnknownNameError as exc:
            raise ConfigFileError(f"{source}: {field}: {exc}") from None


def run_study(
    grid: StudyGrid,
    out_dir: str | Path,
    *,
    store: ResultsStore | None = None,
    executor: Executor | None = None,
    storage: str | Path | Storage | None = None,
    stats: GridStats | None = None,
    progress: bool = True,
    device: str = "cpu",
    on_event: Callable[[str], None] = lambda message: None,
    source: str = "<grid>",
) -> StudyResult:
    """Run every (model, training seed) of ``grid`` as a transfer matrix into ``out_dir``.

    Every model and profile name is checked before anything is trained; ``source`` (the grid's
    file) is named in the message if one is not known.

    Raises:
        ConfigFileError: a name of the grid is not known (with close matches).
    """
    from hwprofiles.data import load_dataset
    from hwprofiles.eval.trained import evaluation_loaders, test_set_id
    from hwprofiles.eval.transfer import noisy_profiles, run_transfer
    from hwprofiles.profiles import list_profiles
    from hwprofiles.train import TrainConfig

    check_names(grid, source)
    evals = grid.eval_profiles or list_profiles()
    trains = grid.train_profiles or noisy_profiles()
    out = Path(out_dir)
    training = grid.training.model_dump()
    download = training.pop("download")
    matrices: dict[tuple[str, int], TransferResult] = {}
    for seed in grid.seeds:
        splits = load_dataset(
            grid.dataset,
            root=training["data_root"],
            download=download,
            train_subset=training["train_subset"],
            test_subset=training["test_subset"],
            seed=seed,
        )
        loaders = evaluation_loaders(splits)
        for model in grid.models:
            on_event(f"study: {model}, training seed {seed}")
            # The runs train on the splits loaded above, so their configs leave download off
            # (a run resumes only under the config that wrote it).
            base = TrainConfig(model=model, dataset=grid.dataset, seed=seed, download=False, **training)
            matrices[(model, seed)] = run_transfer(
                base,
                train_profiles=trains,
                eval_profiles=evals,
                out_dir=out / f"{model.replace(':', '-')}-s{seed}",
                splits=splits,
                loaders=loaders,
                samples=grid.samples,
                scale_mode=grid.scale_mode,
                target_drop=grid.target_drop,
                store=store,
                test_set=test_set_id(splits, grid.training.test_subset),
                progress=progress,
                device=device,
                on_event=on_event,
                executor=executor,
                stats=stats,
                storage=storage,
            )
    result = StudyResult(grid, matrices)
    result.write(out)
    return result
