"""Content keys: what makes two evaluated chip instances the same measurement.

A stored accuracy is found again only when everything that produced it is the same:
the weights and the model they sit in, the profile as it acted (noise scale and
inference time applied, the noise kinds' plugins and versions), the test data, the
calibration data, the chip seed, the one noisy layer of a per-layer sweep, how the
evaluation was run (batch size, device type) and the engine's semantics version.
File paths and profile names are labels only: overwriting ``m.pt`` with another
model, or editing a profile under the same name, gives another key.

    >>> import torch.nn as nn
    >>> a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    >>> model_digest(a) == model_digest(a), model_digest(a) == model_digest(b)
    (True, False)
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch
    import torch.nn as nn

    from hwprofiles.profiles import Profile

# Bump whenever a noise kind, the analog path or the evaluation changes the numbers
# it gives for the same inputs: results stored under an older version are then
# measured afresh instead of being mixed with new ones.
ENGINE_VERSION = 4  # 3: pcm_drift compensation by summed conductance, truncated photonic gains; 4: Philox normals

# Fields of EvalKey added after results schema 2, with the value that leaves them out of the id.
_LATER_FIELDS = {"bn_recalibration": ""}

# Profile fields that only document (they never change a number).
_PROSE_FIELDS = {"description", "references", "validation", "stress"}


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _update_tensor(h: Any, tensor: torch.Tensor) -> None:
    import torch

    t = tensor.detach().to("cpu").contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)};".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes: any dtype


def model_digest(model: nn.Module, description: dict[str, Any] | None = None) -> str:
    """A hash of a model: its structure (``repr``, class), every tensor of its
    ``state_dict`` (names, dtypes, shapes, bytes), and an optional description of
    how it was built (e.g. a checkpoint's training method and QAT settings)."""
    h = hashlib.sha256()
    h.update(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}\n".encode())
    h.update(_canonical_json(description or {}))
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode() + b"\0")
        _update_tensor(h, tensor)
    return h.hexdigest()


def profile_canonical(profile: Profile, t_inference_s: float | None = None) -> dict[str, Any]:
    """The profile as it acts: every field but its prose, the inference time applied,
    and the plugin (distribution and version) behind each noise kind."""
    from hwprofiles.plugins import plugin_infos
    from hwprofiles.registry import get_noise_model

    data = profile.model_dump(mode="json", exclude=_PROSE_FIELDS)
    if t_inference_s is not None:
        data["t_inference_s"] = float(t_inference_s)
    infos = {info.name: info for info in plugin_infos()}
    owners = {}
    for kind in sorted(set(profile.kinds())):
        owner = get_noise_model(kind).owner
        info = infos.get(owner)
        owners[kind] = f"{info.distribution}=={info.version}" if info is not None else owner
    data["kind_owners"] = owners
    return data


def profile_digest(profile: Profile, t_inference_s: float | None = None) -> str:
    """A hash of :func:`profile_canonical`."""
    return hashlib.sha256(_canonical_json(profile_canonical(profile, t_inference_s))).hexdigest()


def batches_digest(batches: Iterable[Any]) -> str:
    """A hash of every tensor of every batch, in order (batch boundaries included)."""
    import torch

    h = hashlib.sha256()
    for i, batch in enumerate(batches):
        h.update(f"batch {i};".encode())
        for part in batch if isinstance(batch, (tuple, list)) else (batch,):
            if isinstance(part, torch.Tensor):
                _update_tensor(h, part)
            else:
                h.update(repr(part).encode())
    return h.hexdigest()


def loader_identity(loader: Any) -> tuple[str, int]:
    """``(content digest, batch size)`` of a DataLoader's dataset, without iterating it
    when the dataset is in memory."""
    # in-memory splits are served by a BatchSampler as the loader's sampler (batch_size None)
    batch_size = (
        getattr(loader, "batch_size", None)
        or getattr(getattr(loader, "sampler", None), "batch_size", None)
        or getattr(getattr(loader, "batch_sampler", None), "batch_size", None)
        or 0
    )
    dataset = getattr(loader, "dataset", None)
    if dataset is None:
        return batches_digest(loader), 0
    return dataset_digest(dataset), int(batch_size)


_dataset_digests: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def dataset_digest(dataset: Any) -> str:
    """A hash of a dataset's content (its tensors for in-memory datasets, else every
    sample in order). Cached per dataset object."""
    try:
        return _dataset_digests[dataset]
    except (KeyError, TypeError):
        pass
    tensors = getattr(dataset, "tensors", None)
    if tensors is not None:
        digest = batches_digest([tuple(tensors)])
    else:
        digest = batches_digest(dataset[i] for i in range(len(dataset)))
    try:
        _dataset_digests[dataset] = digest
    except TypeError:  # not weak-referenceable: computed again next time
        pass
    return digest


@dataclass(frozen=True)
class EvalKey:
    """Everything that identifies one evaluated chip instance.

    ``id`` is the SHA-256 of all fields: the primary key of the results store.
    """

    model: str  # model_digest
    profile: str  # profile_digest (noise scale and inference time applied)
    data: str  # the test data
    calibration: str  # the data the DAC input bounds were calibrated on ("" if none)
    seed: int  # the chip instance
    layer: str = ""  # per-layer sensitivity: the only noisy layer; "" for all
    batch_size: int = 0  # how the test data were batched (per-read draws follow it)
    device: str = "cpu"  # device type: CPU and CUDA generators draw different numbers
    engine_version: int = ENGINE_VERSION
    bn_recalibration: str = ""  # the data batch norm was re-estimated on, per chip ("" if not)

    @property
    def id(self) -> str:
        fields = asdict(self)
        # A field added after results schema 2 enters the hash only when set, so every
        # result stored before keeps its key.
        for name, unset in _LATER_FIELDS.items():
            if fields[name] == unset:
                del fields[name]
        return hashlib.sha256(_canonical_json(fields)).hexdigest()
