"""Checkpoints: a state dict plus the metadata needed to rebuild and resume a run.

Written atomically; read with ``torch.load(weights_only=True)`` so a checkpoint can
never execute code.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from hwprofiles.errors import CheckpointError, OutputError
from hwprofiles.io import atomic_write

FORMAT = "hwprofiles-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically to ``path``."""
    try:
        with atomic_write(path, "wb") as handle:
            torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
    except RuntimeError as exc:  # torch reports a failed write (a full disk) as a RuntimeError
        raise OutputError(
            f"{path}: cannot be written ({str(exc).splitlines()[0][:200]}); check the disk and the "
            "folder, or write elsewhere (--out). The previous checkpoint is kept."
        ) from None
    return Path(path)


def _unsafe_global(exc: BaseException) -> str | None:
    """The class or function a refused file asked to load, if that is why it was refused."""
    for line in str(exc).splitlines():
        match = re.search(r"unsupported global:\s*(?:GLOBAL\s+)?([\w.]+)", line, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def _reason(exc: BaseException) -> str:
    # torch's own text suggests loading with weights_only=False, which would run any code
    # the file holds: never pass that on. Keep only the cause.
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [
        line
        for line in lines
        if not line.startswith(
            ("Weights only load failed", "Please file an issue", "Check the documentation", "WeightsUnpickler error")
        )
    ]
    return (causes[0] if causes else type(exc).__name__)[:200]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, is not a torch file, holds anything
            but plain data, or is not a hwprofiles checkpoint.
    """
    path = Path(path)
    data = _load_plain(path, map_location, "hwprofiles checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a torch file, but not a hwprofiles checkpoint (no '{FORMAT}' marker)")
    if data.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {data.get('version')} is not supported (expected {VERSION})"
        )
    for key in ("state_dict", "meta"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return data


def _load_plain(path: Path, map_location: str | torch.device, what: str) -> Any:
    """``torch.load`` with ``weights_only=True``, its failures as one CheckpointError."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        unsafe = _unsafe_global(exc)
        if unsafe is not None:
            raise CheckpointError(
                f"{path}: holds code or Python objects ({unsafe}), not only tensors and plain data, so it was not "
                "loaded: hwprofiles never runs what a file says. Save the weights alone "
                "(torch.save(model.state_dict(), path)) where the file was made."
            ) from None
        raise CheckpointError(
            f"{path}: not a valid {what} file ({_reason(exc)}). "
            "It may be truncated or from another program; point at another file."
        ) from None


def load_state_dict_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The weights of a model trained elsewhere: a file written by ``torch.save(model.state_dict())``
    (or a dict holding one under ``state_dict`` or ``model``, as many training scripts write),
    read with ``weights_only=True``.

    Raises:
        CheckpointError: the file is missing, unsafe, or holds no state dict.
    """
    path = Path(path)
    data = _load_plain(path, map_location, "weights")
    if isinstance(data, dict) and data.get("format") == FORMAT:
        data = data.get("state_dict")
    elif isinstance(data, dict) and not any(isinstance(v, torch.Tensor) for v in data.values()):
        data = next(
            (data[k] for k in ("state_dict", "model", "model_state_dict") if isinstance(data.get(k), dict)), data
        )
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(
            f"{path}: holds no state dict (a mapping of parameter names to tensors). Save one with "
            "torch.save(model.state_dict(), path)."
        )
    return data
