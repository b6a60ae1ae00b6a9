"""The training loop: seeded, resumable, checkpointed after every epoch."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.errors import (  # TrainingDivergedError is re-exported from here
    CheckpointError,
    DistributedTrainingError,
    HwProfilesError,
    TrainingDivergedError,
    UnknownNameError,
)
from hwprofiles.nn.convert import program, set_noise_scale
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.train import distributed as ddp
from hwprofiles.train.checkpoint import load_checkpoint, save_checkpoint
from hwprofiles.train.config import TrainConfig
from hwprofiles.train.methods import prepare_for_training


@dataclass
class TrainResult:
    checkpoint: Path
    test_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    rank: int = 0  # in data-parallel training, the process that returned this (0 writes the checkpoint)


def _versions() -> dict[str, str]:
    from hwprofiles.version import __version__

    return {"hwprofiles": str(__version__), "torch": str(torch.__version__), "python": platform.python_version()}


def _epoch_seed(seed: int, epoch: int) -> int:
    # Everything random in an epoch derives from (seed, epoch), so a resumed run
    # draws exactly what an uninterrupted one would.
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63)


def build_base_model(config: TrainConfig, in_channels: int, num_classes: int) -> nn.Module:
    from hwprofiles.models import get_model

    torch.manual_seed(config.seed)
    return get_model(config.model, in_channels=in_channels, num_classes=num_classes, width=config.width)


def _optimizer(model: nn.Module, config: TrainConfig, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    if config.optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)


@torch.no_grad()
def accuracy(model: nn.Module, loader: torch.utils.data.DataLoader, device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` (in eval mode) over ``loader``."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += int((model(x).argmax(dim=1) == y).sum())
        total += int(y.numel())
    model.train(was_training)
    return correct / max(total, 1)


def _restore_input_bounds(model: nn.Module, bounds: dict[str, float]) -> None:
    """Input bounds of a checkpoint written before they were saved in the state dict
    (under ``input_bounds``, by layer name)."""
    for name, bound in bounds.items():
        mvm = model.get_submodule(f"{name}.mvm")
        if isinstance(mvm, AnalogMVM) and not mvm.calibrated:
            mvm.set_bound(float(bound))


def _diverged(loss: float, config: TrainConfig, epoch: int, step: int) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"the loss became {loss} at epoch {epoch + 1}, step {step + 1} of {config.label} "
        f"training ({config.model}). Lower the learning rate (--lr) or the noise scale, or use "
        "--schedule ramp. The last good checkpoint is kept."
    )


def train(
    config: TrainConfig,
    checkpoint: str | Path,
    *,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
    data: Any = None,
    nproc: int = 1,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    _rank: Any = None,
) -> TrainResult:
    """Train ``config`` and write a checkpoint after every epoch (atomically).

    With ``nproc`` > 1, or when started by torchrun (``WORLD_SIZE`` > 1 in the environment),
    the model is trained data-parallel: see :mod:`hwprofiles.train.distributed` for how the
    batches (``batch_size`` stays the global batch), seeds and calibration buffers are
    shared out. Only rank 0 writes the checkpoint, in the single-process format.

    Args:
        config: the run.
        checkpoint: where the checkpoint goes.
        resume: continue from ``checkpoint`` if it exists (same config required).
        device: torch device.
        progress: show a progress bar.
        data: already loaded dataset splits (default: load ``config.dataset``).
        nproc: training processes to start on this machine (CUDA: one GPU each).
        on_epoch: called with each epoch's entry of the history (epoch, train_loss,
            train_accuracy, test_accuracy) once its checkpoint is written, e.g. to record
            it with an experiment tracker (:mod:`hwprofiles.tracking`); by the process
            that writes the checkpoint only.

    Raises:
        TrainingDivergedError: the loss became NaN.
        DistributedTrainingError: ``nproc`` cannot run here, or a training process failed.

    >>> from hwprofiles.train import TrainConfig, train
    >>> cfg = TrainConfig(dataset="synthetic", epochs=1, width=0.5, train_subset=256, test_subset=64)
    >>> train(cfg, "m.pt", nproc=2, progress=False).test_accuracy  # doctest: +SKIP
    0.53125
    """
    if _rank is None and (nproc != 1 or os.environ.get("WORLD_SIZE", "1") != "1"):
        return _train_data_parallel(
            config,
            checkpoint,
            resume=resume,
            device=device,
            progress=progress,
            data=data,
            nproc=nproc,
            on_epoch=on_epoch,
        )
    from hwprofiles.data import load_dataset, make_loaders

    checkpoint = Path(checkpoint)
    rank = _rank  # None: a single process, on today's path (no torch.distributed)
    main = rank is None or rank.is_main
    if rank is not None:
        device = str(rank.device)
    splits = data or load_dataset(
        config.dataset,
        root=config.data_root,
        download=config.download,
        train_subset=config.train_subset,
        test_subset=config.test_subset,
        seed=config.seed,
    )
    model = prepare_for_training(build_base_model(config, splits.in_channels, splits.num_classes), config).to(device)
    n_train = len(cast(Sized, splits.train))
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    method = config.training_method
    noise = method.noise_schedule(model, config, steps_per_epoch)  # None: trains without noise
    optimizer, scheduler = _optimizer(model, config, config.epochs * steps_per_epoch)
    start_epoch, history = 0, []
    if resume and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        try:
            saved = TrainConfig.from_dict(state["meta"]["config"])
        except UnknownNameError:
            raise  # an unknown name in the metadata (a plugin's method, say) is not a missing key
        except (KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{checkpoint}: its metadata lacks {exc}; it cannot be resumed. Train afresh to another --out."
            ) from None
        if saved != config:
            raise HwProfilesError(f"{checkpoint}: was written by another configuration; cannot resume it with this one")
        try:
            model.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, history = int(state["epoch"]), list(state.get("history", []))
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines()[:3] if line.strip())[:300]
            raise CheckpointError(
                f"{checkpoint}: does not fit the model, optimizer or schedule of its own configuration "
                f"({config.model}, {config.method}): {detail or exc!r}. Train afresh to another --out."
            ) from None
        _restore_input_bounds(model, state.get("input_bounds", {}))
    resumed_from = start_epoch
    net = model if rank is None else ddp.wrap(model, rank)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        disable=not (progress and main),
        transient=False,
        console=Console(stderr=True),  # stdout is for results (--json)
    )
    test_acc = history[-1]["test_accuracy"] if history else float("nan")
    with bar:
        for epoch in range(start_epoch, config.epochs):
            seed = _epoch_seed(config.seed, epoch)
            own_seed = seed if rank is None else rank.seed(seed)  # each rank its own noise
            torch.manual_seed(own_seed)
            if noise is not None:
                program(model, seed=own_seed)
            train_loader, test_loader = make_loaders(splits, config.batch_size, seed=seed)
            if rank is not None:
                train_loader = ddp.rank_loader(splits.train, config.batch_size, seed=seed, rank=rank)
            task = bar.add_task(f"{config.label} epoch {epoch + 1}/{config.epochs}", total=len(train_loader), stats="")
            model.train()
            loss_sum = correct = seen = 0.0
            for step, (x, y) in enumerate(train_loader):
                if noise is not None:
                    method.select_noise(model, config, epoch * steps_per_epoch + step, own_seed)
                    if noise.ramp_steps:
                        set_noise_scale(model, noise.at(epoch * steps_per_epoch + step))
                x, y = x.to(device), y.to(device)
                logits = net(x)
                if rank is None:
                    loss = F.cross_entropy(logits, y)
                    if not torch.isfinite(loss):
                        raise _diverged(float(loss.detach()), config, epoch, step)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    step_loss, step_correct, step_seen = (
                        float(loss.detach()) * y.numel(),
                        float((logits.argmax(1) == y).sum()),
                        y.numel(),
                    )
                else:
                    # summed over this rank's share, scaled so DDP's mean over ranks is the batch mean
                    total, mine = ddp.batch_sizes(n_train, config.batch_size, step, rank)
                    losses = F.cross_entropy(logits, y, reduction="none")[:mine]
                    optimizer.zero_grad(set_to_none=True)
                    (losses.sum() * (rank.world / total)).backward()
                    # after backward, so no buffer an autograd graph saved is written under it
                    step_loss, step_correct, step_seen = ddp.sync_step(
                        model,
                        [float(losses.detach().sum()), float((logits[:mine].argmax(1) == y[:mine]).sum()), mine],
                        rank,
                    )
                    if not math.isfinite(step_loss):  # the batch's loss: every rank stops together
                        raise _diverged(step_loss / step_seen, config, epoch, step)
                optimizer.step()
                scheduler.step()
                loss_sum += step_loss
                correct += step_correct
                seen += step_seen
                bar.update(task, advance=1, stats=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f}")
            if main:
                if noise is not None:
                    method.select_noise(model, config, None, 0)
                    program(model, seed=0)  # report accuracy on one fixed chip of the training profile
                test_acc = accuracy(model, test_loader, device)
            if rank is not None:
                test_acc = ddp.broadcast_value(test_acc, rank)
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": loss_sum / seen,
                    "train_accuracy": correct / seen,
                    "test_accuracy": test_acc,
                }
            )
            bar.update(task, stats=f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f} test {test_acc:.3f}")
            if main:
                save_checkpoint(
                    checkpoint,
                    {
                        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch + 1,
                        "history": history,
                        "meta": {
                            "config": config.to_dict(),
                            "versions": _versions(),
                            "finished": epoch + 1 == config.epochs,
                            "num_classes": splits.num_classes,
                            "in_channels": splits.in_channels,
                        },
                    },
                )
                if on_epoch is not None:
                    on_epoch(dict(history[-1]))
    if rank is not None:
        ddp.barrier(rank)  # every rank returns once the last checkpoint is written
    return TrainResult(
        checkpoint=checkpoint,
        test_accuracy=test_acc,
        history=history,
        resumed_from_epoch=resumed_from,
        rank=0 if rank is None else rank.rank,
    )


def _train_data_parallel(
    config: TrainConfig,
    checkpoint: str | Path,
    *,
    resume: bool,
    device: str,
    progress: bool,
    data: Any,
    nproc: int,
    on_epoch: Callable[[dict[str, float]], None] | None,
) -> TrainResult:
    """Start ``nproc`` processes here, or join the run of an outside launcher (torchrun)."""
    world = ddp.env_world_size()
    if world > 1:
        if nproc not in (1, world):
            raise DistributedTrainingError(
                f"--nproc {nproc} under a launcher that started {world} processes (WORLD_SIZE): leave --nproc out"
            )
        ddp.check_request(int(os.environ.get("LOCAL_WORLD_SIZE", world)), device)  # GPUs are per machine
        rank = ddp.rank_from_env(device)
        return train(
            config,
            checkpoint,
            resume=resume,
            device=device,
            progress=progress,
            data=data,
            on_epoch=on_epoch,
            _rank=rank,
        )
    ddp.check_request(nproc, device)
    done = ddp.launch(
        nproc, train, config=config, checkpoint=checkpoint, resume=resume, device=device, progress=progress, data=data
    )
    if on_epoch is not None:  # the callback stays in this process: it hears of the epochs once they are done
        for entry in done["history"][done["resumed_from_epoch"] :]:
            on_epoch(dict(entry))
    return TrainResult(
        checkpoint=Path(checkpoint),
        test_accuracy=done["test_accuracy"],
        history=done["history"],
        resumed_from_epoch=done["resumed_from_epoch"],
    )
