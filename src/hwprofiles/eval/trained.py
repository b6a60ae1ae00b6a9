"""Models made ready for evaluation: rebuilt from checkpoints, or weights trained elsewhere.

A :class:`Trained` carries the float model, how it was built (its training
configuration) and the label it is shown under; its content hash keys every result
measured on it, so the file it came from is only a label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch.nn as nn

from hwprofiles.errors import CheckpointError, UnknownNameError
from hwprofiles.eval.keys import model_digest
from hwprofiles.eval.labels import relabel
from hwprofiles.train.checkpoint import load_checkpoint
from hwprofiles.train.config import TrainConfig
from hwprofiles.train.loop import build_base_model
from hwprofiles.train.methods import model_for_evaluation

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.data import DatasetSplits
    from hwprofiles.results import ResultsStore

# The dataset of weights from elsewhere when neither the user nor a checkpoint names one.
DEFAULT_DATASET = "fashion-mnist"


@dataclass
class Trained:
    """A model made ready for evaluation: from a checkpoint, or weights trained elsewhere.

    Attributes:
        path: the checkpoint or weights file (a label: results are keyed by content).
        config: the training configuration (for weights from elsewhere, what is known).
        model: float-structured, weights loaded.
        meta: the checkpoint's metadata.
        label: the name shown in tables (unique within one report, see
            :func:`hwprofiles.eval.labels.unique_labels`).
    """

    path: Path
    config: TrainConfig
    model: nn.Module
    meta: dict[str, Any]
    label: str = ""
    _digest: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.config.label

    @property
    def description(self) -> dict[str, Any]:
        """How the model was built, hashed with its weights."""
        c = self.config
        return {"model": c.model, "width": c.width, "method": c.method, "bits": c.bits, "act_scale": c.act_scale}

    @property
    def digest(self) -> str:
        """The content hash of the model (weights, structure, how it was built)."""
        if self._digest is None:
            self._digest = model_digest(self.model, self.description)
        return self._digest

    def store_labels(self, test_set: str) -> dict[str, Any]:
        """The label columns stored beside each of this model's results."""
        method = "external" if "weights" in self.meta else self.config.method  # trained elsewhere
        return {
            "checkpoint": str(self.path),
            "model": self.config.model,
            "method": method,
            "train_profile": self.config.profile,
            "test_set": test_set,
        }


def load_trained(path: str | Path, splits: Any = None) -> Trained:
    """Rebuild the model of a checkpoint (float layers, QAT weights quantized once).

    ``splits`` gives the input channels and classes; without it, the checkpoint's own.

    Raises:
        CheckpointError: the checkpoint was not written by ``hwprofiles train``, or its
            weights do not fit the model its metadata describes.
    """
    state = load_checkpoint(path)
    meta = state["meta"]
    try:
        config = TrainConfig.from_dict(meta["config"])
        in_channels = splits.in_channels if splits is not None else meta["in_channels"]
        num_classes = splits.num_classes if splits is not None else meta["num_classes"]
    except UnknownNameError:
        raise  # an unknown name in the metadata (a plugin's method, say) is not a missing key
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its metadata lacks {exc}; it was not written by hwprofiles train. "
            "Retrain, or evaluate its weights with --model NAME --weights FILE."
        ) from None
    base = build_base_model(config, in_channels, num_classes)
    try:
        model = model_for_evaluation(base, state["state_dict"], config)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: its weights do not fit the model its metadata describes ({config.model}, width "
            f"{config.width:g}, {in_channels} input channels, {num_classes} classes): {_first_lines(exc)}"
        ) from None
    model.eval()
    return Trained(Path(path), config, model, state["meta"])


def _first_lines(exc: BaseException) -> str:
    """torch's load_state_dict message without its long tail: what is missing or mismatched."""
    return " ".join(line.strip() for line in str(exc).splitlines()[:4] if line.strip())[:400]


def load_weights(path: str | Path, model: str, splits: Any, *, width: float = 1.0) -> Trained:
    """A model trained elsewhere, ready for evaluation: ``model`` (a zoo name,
    ``torchvision:NAME`` or ``module:factory``) built for ``splits`` and given the state
    dict in ``path`` (read with ``weights_only=True``).

    Raises:
        CheckpointError: the file holds no state dict, or its weights do not fit the model.
    """
    from hwprofiles.models import get_model
    from hwprofiles.train.checkpoint import load_state_dict_file

    state = load_state_dict_file(path)
    net = get_model(model, in_channels=splits.in_channels, num_classes=splits.num_classes, width=width)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: its weights do not fit model '{model}' built for {splits.name} "
            f"({splits.in_channels} input channels, {splits.num_classes} classes, width {width:g}): {_first_lines(exc)} "
            "Check --model, --width and --dataset."
        ) from None
    config = TrainConfig(model=model, dataset=splits.name, width=width)
    return Trained(
        Path(path),
        config,
        net.eval(),
        {"config": config.to_dict(), "weights": str(path)},
        label=f"weights:{Path(path).name}",
    )


def load_models(
    checkpoints: Sequence[str | Path] = (),
    weights: Sequence[str | Path] = (),
    *,
    model: str | None = None,
    width: float = 1.0,
    dataset: str | None = None,
    data_root: str | None = None,
    download: bool = False,
    test_subset: int | None = None,
) -> tuple[DatasetSplits, list[Trained]]:
    """The data and the models to evaluate: checkpoints, and ``weights`` of ``model``
    trained elsewhere. Labels are made unique after what tells the models apart.

    The data are ``dataset``, else the first checkpoint's; its training run's data root
    is used when ``data_root`` is not given and it exists here.

    Raises:
        ValueError: neither checkpoints nor weights, or weights without ``model``.
    """
    from hwprofiles.data import load_dataset

    if not checkpoints and not weights:
        raise ValueError("give checkpoints, or a model and its weights")
    if weights and not model:
        raise ValueError("weights need the model they belong to")
    first = load_checkpoint(checkpoints[0])["meta"].get("config", {}) if checkpoints else {}
    name = dataset or first.get("dataset") or DEFAULT_DATASET
    # The training run's root is a hint only: on another machine the data live elsewhere.
    trained_root = first.get("data_root")
    root = data_root or (trained_root if trained_root and Path(trained_root).exists() else None)
    splits = load_dataset(name, root=root, download=download, test_subset=test_subset, seed=0)
    models = [load_trained(p, splits) for p in checkpoints]
    if weights and model:
        models += [load_weights(p, model, splits, width=width) for p in weights]
    return splits, relabel(models)


def record_run(store: ResultsStore, path: str | Path, test_accuracy: float) -> Trained:
    """Record a finished training run in ``store`` under its model's content hash; returns the model."""
    trained = load_trained(path)
    store.record_run(str(path), trained.meta, test_accuracy, True, model_hash=trained.digest)
    return trained


def evaluation_loaders(splits: DatasetSplits, batch_size: int = 256) -> tuple[Any, Any]:
    """Train and test loaders for evaluation, in the splits' order: the first training
    batches calibrate the DACs, the test batches are measured."""
    from hwprofiles.data import make_loaders

    return make_loaders(splits, batch_size, seed=0, shuffle=False)


def test_set_id(splits: Any, test_subset: int | None) -> str:
    """A label for the test data (the key holds a hash of its content)."""
    return f"{splits.name}/test/{test_subset or 'all'}"
