"""``hwprofiles train``: one training run (:func:`hwprofiles.train.train`), recorded in the results store."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.config import configurable
from hwprofiles.cli.tracking_options import TrackingOptions

app = typer.Typer()


@dataclass(frozen=True)
class MethodOptions:
    """The training method and its settings: the fields of :class:`~hwprofiles.train.TrainConfig`
    that only ``train`` takes."""

    method: Annotated[str, typer.Option("--method", help="clean, qat, qat-learned, nit or vant.")] = "clean"
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="Training profile of nit/vant; several as NAME,NAME:WEIGHT,... or all (each step under one, "
            "sampled by weight).",
        ),
    ] = None
    noise_scale: Annotated[
        float | None, typer.Option("--noise-scale", min=0, help="Training noise scale.", show_default="the profile's")
    ] = None
    schedule: Annotated[
        opt.Schedule,
        typer.Option("--schedule", case_sensitive=False, help="constant, or ramp (linear from 0 over --ramp-epochs)."),
    ] = opt.Schedule.constant
    ramp_epochs: Annotated[int, typer.Option("--ramp-epochs", min=1)] = 1
    bits: Annotated[int, typer.Option("--bits", min=2, max=16, help="QAT bits.")] = 8
    act_scale: Annotated[float, typer.Option("--act-scale", min=0, help="QAT constant activation step.")] = 1.0
    alpha: Annotated[float, typer.Option("--alpha", help="VANT alpha.")] = 0.45
    theta: Annotated[float, typer.Option("--theta", help="VANT theta.")] = 0.66
    optimizer: Annotated[opt.Optimizer, typer.Option("--optimizer", case_sensitive=False, help="adam or sgd.")] = (
        opt.Optimizer.adam
    )

    def settings(self) -> dict[str, Any]:
        """The fields as TrainConfig takes them: the choices by name."""
        return {**asdict(self), "schedule": self.schedule.value, "optimizer": self.optimizer.value}


@app.command("train")
@configurable
@opt.option_group(MethodOptions)
@opt.option_group(opt.TrainingOptions)
@opt.option_group(opt.RunOptions, omit=("executor", "ray_address"))
@opt.option_group(TrackingOptions)
def train_command(
    *,
    model: Annotated[
        str, typer.Option("--model", help="A zoo model (listed by hwprofiles models) or torchvision:NAME.")
    ] = "lenet5",
    dataset: opt.Dataset = "fashion-mnist",
    method_options: MethodOptions,
    training: opt.TrainingOptions,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Checkpoint path.", show_default="hwprofiles-out/checkpoints/MODEL-METHOD-sSEED.pt"
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Continue from the checkpoint at --out.")
    ] = False,
    run: opt.RunOptions,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train data-parallel in N processes on this machine (CUDA: one GPU each); --batch-size stays the global batch.",
        ),
    ] = 1,
    tracking: TrackingOptions,
    ctx: typer.Context,
) -> None:
    """Train a model clean, with QAT, or with noise injection under a profile."""
    from hwprofiles.eval.trained import record_run
    from hwprofiles.train import train

    # The names of --method, --schedule and --optimizer are checked by TrainConfig, with the choices.
    config = training.config(model=model, dataset=dataset, **method_options.settings())
    name = f"{model.replace(':', '-')}-{config.label.replace(':', '-')}-s{config.seed}.pt"
    path = out or opt.OUT / "checkpoints" / name
    tracker = tracking.start(ctx, path.stem, path.parent, params=config.to_dict())
    result = train(
        config, path, resume=resume, device=run.device, progress=run.progress, nproc=nproc, on_epoch=tracker.log_epoch
    )
    if result.rank != 0:  # under torchrun every process runs this command; rank 0 reports
        return
    record_run(run.store(), path, result.test_accuracy)
    tracker.log_artifact(path, "checkpoints")
    typer.echo(f"test accuracy {result.test_accuracy:.4f}; checkpoint written to {path}")
