"""Cross-hardware transfer: train under one profile, evaluate under all others.

Rows are how a model was trained (clean, QAT, NIT under each training profile);
columns are the profiles it is evaluated under. The transfer-efficiency matrix
divides each column by the accuracy of the model trained under that column's own
profile: 1.0 means training elsewhere cost nothing.

Noise levels differ wildly between profiles, so the scale each profile runs at is
a choice, recorded in the outputs:

``published``
    every profile at ``noise_scale`` 1, i.e. the numbers in its file (its
    published level; the Gaussian profiles at their file sigma).
``matched``
    each profile scaled so that the clean model loses ``target_drop`` of its
    accuracy (found by bisection in log scale on the clean model), the same scale
    used to train NIT under it. Columns then pose comparable difficulty.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwprofiles.errors import HwProfilesError
from hwprofiles.eval.chips import checkpoint_request, evaluate_checkpoint
from hwprofiles.eval.grid import GridStats, run_requests
from hwprofiles.eval.labels import relabel
from hwprofiles.eval.summary import EvaluationResult, Summary
from hwprofiles.eval.trained import Trained, load_trained
from hwprofiles.eval.transfer_report import TransferResult
from hwprofiles.io import write_bytes
from hwprofiles.profiles import list_profiles, load_profile
from hwprofiles.progress import ChipProgress
from hwprofiles.results import ResultsStore
from hwprofiles.storage import Storage, fetch, open_storage
from hwprofiles.train.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.executors import Executor


def matched_scale(
    trained: Trained,
    profile_name: str,
    loaders: Any,
    *,
    target_drop: float,
    clean_accuracy: float,
    samples: int,
    store: ResultsStore | None,
    test_set: str,
    steps: int = 6,
    device: str = "cpu",
) -> float:
    """The noise scale at which ``trained`` loses ``target_drop`` of ``clean_accuracy``
    under ``profile_name`` (bisection in log10 scale over [1e-3, 1e3])."""
    target = clean_accuracy * (1.0 - target_drop)
    low, high = -3.0, 3.0
    for _ in range(steps):
        mid = (low + high) / 2
        acc = evaluate_checkpoint(
            trained,
            profile_name,
            loaders,
            samples=samples,
            noise_scale=10**mid,
            store=store,
            test_set=test_set,
            device=device,
        ).mean
        if acc > target:
            low = mid
        else:
            high = mid
    return float(10 ** ((low + high) / 2))


def noisy_profiles() -> list[str]:
    """Every profile that adds noise: the training profiles of a transfer experiment unless told."""
    return [name for name in list_profiles() if load_profile(name).noise]


def transfer_configs(
    base: TrainConfig,
    train_profiles: Sequence[str],
    scales: dict[str, float],
    qat: bool = True,
    mixed_profiles: Sequence[str] = (),
    train_noise_scale: float | None = None,
) -> list[TrainConfig]:
    """The runs of a transfer experiment: clean, QAT, NIT under each training profile (at its
    column's scale, or at ``train_noise_scale`` when given), and NIT under each set of
    profiles in ``mixed_profiles`` (``NAME,NAME:WEIGHT,...`` or ``all``; each profile of a
    set at its published noise scale)."""
    configs = [replace(base, method="clean", profile=None, noise_scale=None)]
    if qat:
        configs.append(replace(base, method="qat", profile=None, noise_scale=None))
    for name in train_profiles:
        scale = scales.get(name) if train_noise_scale is None else train_noise_scale
        configs.append(replace(base, method="nit", profile=name, noise_scale=scale))
    for spec in mixed_profiles:
        configs.append(replace(base, method="nit", profile=spec, noise_scale=None))
    return configs


def run_transfer(
    base: TrainConfig,
    *,
    train_profiles: Sequence[str],
    eval_profiles: Sequence[str],
    out_dir: str | Path,
    mixed_profiles: Sequence[str] = (),
    splits: Any,
    loaders: Any,
    samples: int = 5,
    scale_mode: str = "published",
    target_drop: float = 0.1,
    store: ResultsStore | None = None,
    test_set: str = "test",
    progress: bool = True,
    device: str = "cpu",
    on_event: Callable[[str], None] = lambda message: None,
    extra_models: Sequence[Trained] = (),
    executor: Executor | None = None,
    stats: GridStats | None = None,
    storage: str | Path | Storage | None = None,
    recalibrate_bn: bool = False,
    train_noise_scale: float | None = None,
) -> TransferResult:
    """Train (or reuse finished checkpoints of) every row, evaluate it under every column.

    ``train_noise_scale`` trains the NIT rows at that noise scale instead of their
    column's. ``recalibrate_bn`` re-estimates batch norm on every chip of the matrix (see
    :func:`~hwprofiles.eval.chips.checkpoint_request`). ``mixed_profiles`` adds a row per set of profiles trained under at once (see
    :func:`transfer_configs`). ``extra_models`` (e.g. weights trained elsewhere, :func:`hwprofiles.eval.chips.load_weights`)
    are evaluated as further rows.

    With ``storage`` (a local path or fsspec URL, :mod:`hwprofiles.storage`) every
    checkpoint of the run is also kept there: a run trained on the executor's workers
    leaves it there and the driver copies it into ``out_dir``; a finished checkpoint of
    the same config found there is fetched instead of trained again.
    """
    from hwprofiles.train.checkpoint import load_checkpoint
    from hwprofiles.train.loop import train

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    shared = None if storage is None else open_storage(storage)

    def checkpoint_for(config: TrainConfig) -> Path:
        scale = "" if config.noise_scale is None else f"-x{config.noise_scale:.3g}"
        return ckpt_dir / f"{config.model}-{config.label.replace(':', '-')}{scale}-s{config.seed}.pt"

    def finished(config: TrainConfig, path: Path | None = None) -> bool:
        path = path or checkpoint_for(config)
        if not path.exists():
            return False
        meta = load_checkpoint(path)["meta"]
        return bool(meta.get("finished")) and TrainConfig.from_dict(meta["config"]) == config

    def fetched(config: TrainConfig) -> bool:
        """Copy a finished checkpoint of ``config`` from storage into place, if storage has one."""
        path = checkpoint_for(config)
        if shared is None or not shared.exists(path.name):
            return False
        url = shared.url_of(path.name)
        data = fetch(url)
        with tempfile.TemporaryDirectory() as scratch:  # checked before it replaces a partial run
            (Path(scratch) / path.name).write_bytes(data)
            if not finished(config, Path(scratch) / path.name):
                return False
        write_bytes(path, data)
        on_event(f"fetched finished checkpoint {url} -> {path}")
        return True

    def keep(path: Path, *, replace: bool) -> None:
        """Put a local checkpoint into storage too (``replace``: over one already there)."""
        if shared is not None and (replace or not shared.exists(path.name)):
            shared.put(path.name, path.read_bytes())

    def trained_for(configs: Sequence[TrainConfig]) -> list[Trained]:
        """Train every config not yet finished (on the executor), then load them all."""
        todo = []
        for c in configs:
            if finished(c):
                on_event(f"reusing finished checkpoint {checkpoint_for(c)}")
                keep(checkpoint_for(c), replace=False)
            elif not fetched(c):
                todo.append(c)
                on_event(f"training {c.label} -> {checkpoint_for(c)}")
        if executor is None or executor.name == "local":
            for c in todo:
                train(c, checkpoint_for(c), resume=True, progress=progress, data=splits, device=device)
                keep(checkpoint_for(c), replace=True)
        elif todo:
            runs = [(c, checkpoint_for(c)) for c in todo]
            train_on(executor, runs, splits, device=device, on_event=on_event, storage=shared)
        return [load_trained(checkpoint_for(c), splits) for c in configs]

    clean = trained_for([replace(base, method="clean", profile=None, noise_scale=None)])[0]
    scales: dict[str, float] = {}
    names = list(dict.fromkeys([*eval_profiles, *train_profiles]))
    if scale_mode == "matched":
        clean_acc = evaluate_checkpoint(
            clean, "ideal", loaders, samples=1, store=store, test_set=test_set, device=device
        ).mean
        for name in names:
            if not load_profile(name).noise:
                scales[name] = 1.0
                continue
            scales[name] = matched_scale(
                clean,
                name,
                loaders,
                target_drop=target_drop,
                clean_accuracy=clean_acc,
                samples=max(2, samples // 2),
                store=store,
                test_set=test_set,
                device=device,
            )
            on_event(f"{name}: matched noise scale {scales[name]:.3g}")
    elif scale_mode == "published":
        scales = {name: float(load_profile(name).noise_scale) for name in names}
    else:
        raise ValueError(f"unknown scale mode {scale_mode!r}: use published or matched")

    models = relabel(
        [clean]
        + trained_for(
            transfer_configs(
                base, train_profiles, scales, mixed_profiles=mixed_profiles, train_noise_scale=train_noise_scale
            )[1:]
        )
        + list(extra_models)
    )
    rows = [m.label for m in models]
    cells: dict[tuple[str, str], Summary] = {}
    pairs = [(model, col) for model in models for col in eval_profiles]
    requests = [
        checkpoint_request(
            model,
            col,
            loaders,
            samples=samples,
            noise_scale=scales[col],
            test_set=test_set,
            device=device,
            recalibrate_bn=recalibrate_bn,
        )  # fmt: skip
        for model, col in pairs
    ]
    with ChipProgress("evaluating chip instances", len(requests) * samples, enabled=progress) as bar:
        results = run_requests(
            requests, store=store, executor=executor, on_sample=bar.advance, on_progress=bar.counts, stats=stats
        )
    for (model, col), evaluated in zip(pairs, results):
        # a failed evaluation is named in stats.failures; its cell shows NaN
        cells[(model.label, col)] = evaluated if evaluated is not None else EvaluationResult.failed(col)
    result = TransferResult(
        rows,
        list(eval_profiles),
        cells,
        {c: scales[c] for c in eval_profiles},
        scale_mode,
        {m.label: str(m.path) for m in models},
    )
    result.write(out)
    return result


def _train_to_bytes(config: TrainConfig, data: Any, device: str) -> bytes:
    """Runs on a worker: train ``config`` into a scratch file and return the checkpoint's bytes,
    so the worker needs no disk shared with the driver."""
    from hwprofiles.train.loop import train

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "checkpoint.pt"
        train(config, path, progress=False, data=data, device=device)
        return path.read_bytes()


def _train_to_storage(config: TrainConfig, data: Any, device: str, storage: Storage, name: str) -> str:
    """Runs on a worker: train ``config``, leave the checkpoint in ``storage`` as ``name``
    (written whole, then moved into place) and return only its URL."""
    return storage.put(name, _train_to_bytes(config, data, device))


def train_on(
    executor: Executor,
    runs: Sequence[tuple[TrainConfig, Path]],
    data: Any,
    *,
    device: str = "cpu",
    on_event: Callable[[str], None] = lambda message: None,
    storage: Storage | None = None,
) -> None:
    """Train several runs as tasks of ``executor``; the driver writes each checkpoint
    (atomically) as it arrives. A run that fails is reported by name; the others go on.

    Without ``storage`` a checkpoint travels back as bytes (through Ray's object store);
    with it, each task writes its checkpoint to ``storage`` and returns its URL, from
    which the driver copies it.

    Raises:
        HwProfilesError: naming every run that failed.
    """
    failed: list[str] = []

    def arrived(index: int, value: bytes | str | None, error: BaseException | None) -> None:
        config, path = runs[index]
        source = ""
        if error is None and isinstance(value, str):  # the URL of the checkpoint in storage
            source = f" (from {value})"
            try:
                value = fetch(value)
            except HwProfilesError as exc:
                error = exc
        if error is not None:
            failed.append(f"{config.label}: {error}")
            on_event(f"training {config.label} failed: {error}")
            return
        assert isinstance(value, bytes)  # a task that did not fail returned the checkpoint or its URL
        write_bytes(path, value)
        on_event(f"trained {config.label} -> {path}{source}")

    if storage is None:
        executor.map(_train_to_bytes, [(c, data, device) for c, _ in runs], arrived, devices=[device] * len(runs))
    else:
        tasks = [(c, data, device, storage, path.name) for c, path in runs]
        executor.map(_train_to_storage, tasks, arrived, devices=[device] * len(runs))
    if failed:
        raise HwProfilesError("training failed: " + "; ".join(failed))
