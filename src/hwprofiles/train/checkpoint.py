"""Checkpoints: a state dict plus the metadata needed to rebuild and resume a run.

Written atomically; read with ``torch.load(weights_only=True)`` so a checkpoint can
never execute code.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from hwprofiles.errors import CheckpointError
from hwprofiles.io import atomic_write

FORMAT = "hwprofiles-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) atomically to ``path``."""
    with atomic_write(path, "wb") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, handle)
    return Path(path)


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "Unsupported global" in line:  # weights_only refused a class: say which
            return "it holds objects other than tensors and plain data: " + line.split(":", 1)[-1].split(" was ")[0].strip()
    return (lines[0] if lines else type(exc).__name__)[:200]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, is not a torch file, holds anything
            but plain data, or is not a hwprofiles checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a valid hwprofiles checkpoint ({_reason(exc)}). "
            "It may be truncated or from another program; retrain or point at another file."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a torch file, but not a hwprofiles checkpoint (no '{FORMAT}' marker)")
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {data.get('version')} is not supported (expected {VERSION})")
    for key in ("state_dict", "meta"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks '{key}'")
    return data
