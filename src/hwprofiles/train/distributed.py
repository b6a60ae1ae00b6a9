"""Data-parallel training: one model trained by N processes with DistributedDataParallel.

What a rank does differently from a single process, and why:

- **Batches.** ``batch_size`` is the *global* batch: every epoch's order is the seeded
  permutation a single process would use, cut into the same batches, and rank ``r``
  trains on the ``r``-th contiguous share of each batch (shares differ by at most one
  sample). Each rank's loss is its share's summed loss times ``world / len(batch)``, so
  DDP's mean of the ranks' gradients is the gradient of the whole batch: a clean run
  takes the steps a single process takes, up to the order of floating-point sums, and
  the number of steps (hence the learning-rate schedule) does not depend on ``N``. A
  rank left without a sample (a last batch smaller than ``N``) runs the batch's first
  sample with weight zero, so every rank still joins the gradient all-reduce.
- **Randomness.** Rank 0 seeds torch and programs its noise sites with the epoch seed of
  a single-process run; rank ``r > 0`` with a seed derived from (run seed, epoch, rank).
  Ranks draw different noise, and a rerun draws the same.
- **Buffers.** After every step the floating-point buffers (the calibrated input
  bounds of analog products, BatchNorm statistics) are averaged over the ranks in one
  all-reduce, together with the step's loss and accuracy counts. The bounds are running
  estimates ``b + m (x - b)``; averaging them after each step keeps that form, with
  ``x`` the mean of the ranks' measurements. DDP's own buffer broadcast (rank 0's
  buffers before every forward) is off: it would discard the other ranks' data.
- **Parameters** stay identical because DDP averages the gradients and every rank steps
  the same optimizer from the same state; noise only touches activations and copies of
  the weights, never the parameters.
- **Output.** Rank 0 evaluates the test split (on the chip with seed 0, as a single
  process does), broadcasts the accuracy, and alone writes the checkpoint, in the same
  format as a single-process run.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from torch.multiprocessing.spawn import ProcessException
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler, TensorDataset

from hwprofiles.errors import DistributedTrainingError, HwProfilesError  # the first re-exported from here

TIMEOUT_ENV = "HWPROFILES_DIST_TIMEOUT_S"
# A collective waiting longer than this means a rank is stuck: fail instead of hanging. Long
# enough for rank 0 to evaluate a large test split while the others wait for its accuracy.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Rank:
    """This process's place in a data-parallel run."""

    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def seed(self, epoch_seed: int) -> int:
        """The seed of this rank's noise and torch draws in the epoch whose single-process seed is ``epoch_seed``."""
        if self.rank == 0:
            return epoch_seed
        return (epoch_seed * 6_364_136_223_846_793_005 + self.rank * 1_442_695_040_888_963_407) % (2**63)

    def share(self, n: int) -> tuple[int, int]:
        """The slice ``[start, stop)`` of a batch of ``n`` samples this rank trains on."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise DistributedTrainingError(f"{TIMEOUT_ENV}={raw!r} must be a positive number of seconds")
    return value


def env_world_size() -> int:
    """``WORLD_SIZE`` set by a launcher such as torchrun (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise DistributedTrainingError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole number") from None


def check_request(nproc: int, device: str) -> None:
    """Refuse a process count the machine cannot run.

    Raises:
        DistributedTrainingError: ``nproc`` < 1, or CUDA training asks for more processes than GPUs.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise DistributedTrainingError(f"--nproc {nproc!r}: give a whole number of training processes, at least 1")
    if nproc > 1 and torch.device(device).type == "cuda":
        if torch.device(device).index is not None:
            raise DistributedTrainingError(
                f"--device {device} with --nproc {nproc}: give --device cuda; process r trains on cuda:r"
            )
        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < nproc:
            raise DistributedTrainingError(
                f"--nproc {nproc} on CUDA needs {nproc} GPUs, one per process; this machine has {have}. "
                f"Use --nproc {max(have, 1)} or --device cpu."
            )


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def join_group(rank: int, world: int, device: str, *, local_rank: int, init_method: str = "env://") -> Rank:
    """Join (or reuse) the default process group; CUDA ranks take ``cuda:local_rank``."""
    dev = torch.device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(
            _backend(dev),
            init_method=init_method,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=timeout_s()),
        )
    elif dist.get_world_size() != world or dist.get_rank() != rank:
        raise DistributedTrainingError(
            f"a process group of {dist.get_world_size()} processes is already running here (rank "
            f"{dist.get_rank()}); it does not match WORLD_SIZE={world}, RANK={rank}"
        )
    return Rank(rank=rank, world=world, device=dev)


def rank_from_env(device: str) -> Rank:
    """This process's rank under an outside launcher (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK)."""
    try:
        rank, world = int(os.environ["RANK"]), env_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise DistributedTrainingError(
            "WORLD_SIZE is set but RANK is missing or not a number: start data-parallel training with "
            "torchrun, or with hwprofiles train --nproc N"
        ) from None
    if torch.device(device).type == "cuda" and torch.cuda.device_count() <= local_rank:
        raise DistributedTrainingError(
            f"process with LOCAL_RANK={local_rank} has no GPU: this machine has {torch.cuda.device_count()}"
        )
    return join_group(rank, world, device, local_rank=local_rank)


# -- batches ---------------------------------------------------------------------------
class _RankShares(Sampler[list[int]]):
    """This rank's share of each global batch (at least one index; see :func:`real_samples`)."""

    def __init__(self, batches: BatchSampler, rank: Rank) -> None:
        self.batches, self.rank = batches, rank

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            start, stop = self.rank.share(len(batch))
            yield batch[start:stop] if stop > start else batch[:1]

    def __len__(self) -> int:
        return len(self.batches)


def rank_loader(dataset: Any, batch_size: int, *, seed: int, rank: Rank) -> DataLoader:
    """This rank's training loader: its shares of the batches a single process draws with ``seed``.

    Built like :func:`hwprofiles.data.make_loaders`' training loader (one generator for the
    sampler and the loader), so the permutation is the single-process one.
    """
    generator = torch.Generator().manual_seed(seed)
    batches = BatchSampler(RandomSampler(dataset, generator=generator), batch_size, drop_last=False)
    shares = _RankShares(batches, rank)
    if isinstance(dataset, TensorDataset):
        return DataLoader(dataset, batch_size=None, sampler=shares, num_workers=0, generator=generator)
    return DataLoader(dataset, batch_sampler=shares, num_workers=0, generator=generator)


def batch_sizes(n_train: int, batch_size: int, step: int, rank: Rank) -> tuple[int, int]:
    """(samples in global batch ``step``, of which this rank's share holds)."""
    total = min(batch_size, n_train - step * batch_size)
    start, stop = rank.share(total)
    return total, stop - start


# -- the step ----------------------------------------------------------------------------
def wrap(model: nn.Module, rank: Rank) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    ids = [rank.device.index] if rank.device.type == "cuda" else None
    # A convolution over one input channel gets weight gradients whose strides differ from
    # DDP's bucket only along that size-1 dimension: the same layout, so the warning is noise.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    # No buffer broadcast before each forward: sync_step averages the buffers instead.
    # (Syncing them once at the start is harmless: every rank built or loaded the same ones.)
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)
    return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def _float_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b for _, b in model.named_buffers() if b.is_floating_point()]


@torch.no_grad()
def sync_step(model: nn.Module, stats: list[float], rank: Rank) -> list[float]:
    """Sum ``stats`` over the ranks and average the model's floating-point buffers in place;
    one all-reduce. Returns the summed stats."""
    buffers = _float_buffers(model)
    local = torch.tensor(stats, dtype=torch.float64, device=rank.device)
    packed = torch.cat([local, *(b.detach().reshape(-1).to(torch.float64) for b in buffers)])
    dist.all_reduce(packed)
    offset = len(stats)
    for b in buffers:
        n = b.numel()
        # copy_ bumps the buffer's version, which tells an analog product its cached bound is stale
        b.copy_((packed[offset : offset + n] / rank.world).view_as(b))
        offset += n
    return packed[: len(stats)].tolist()


def broadcast_value(value: float, rank: Rank) -> float:
    """Rank 0's ``value`` on every rank."""
    t = torch.tensor([value if rank.is_main else 0.0], dtype=torch.float64, device=rank.device)
    dist.broadcast(t, src=0)
    return float(t.item())


def barrier(rank: Rank) -> None:
    if rank.device.type == "cuda":
        dist.barrier(device_ids=[rank.device.index])
    else:
        dist.barrier()


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def in_group() -> bool:
    """Whether this process has joined a process group (a rank of a data-parallel run)."""
    return dist.is_available() and dist.is_initialized()


def exit_rank(code: int) -> NoReturn:
    """Leave the process group and end this process with ``code`` without Python's finalisation.

    Why: a gloo worker thread can still be releasing the tensors of the last collective
    when the interpreter finalises (DDP keeps the group alive past
    ``destroy_process_group``, so its threads are never joined); taking the GIL from that
    thread then aborts the process ("terminate called without an active exception",
    SIGABRT), turning a finished run into a failed one. Everything this process wrote
    is closed by then; only the standard streams need flushing.
    """
    leave_group()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # closed or replaced streams
            pass
    os._exit(code)


# -- launching N local processes ---------------------------------------------------------
def _worker(index: int, nproc: int, store: str, outbox: str, train: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    os.environ.update({"WORLD_SIZE": str(nproc), "RANK": str(index), "LOCAL_RANK": str(index)})
    if "OMP_NUM_THREADS" not in os.environ:
        # The processes share the cores instead of each taking them all. (Results depend on
        # the thread count: torchrun's default is 1; OMP_NUM_THREADS sets it for both.)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        rank = join_group(index, nproc, kwargs["device"], local_rank=index, init_method=f"file://{store}")
        result = train(**kwargs, _rank=rank)
        if rank.is_main:
            torch.save(
                {
                    "test_accuracy": result.test_accuracy,
                    "history": result.history,
                    "resumed_from_epoch": result.resumed_from_epoch,
                },
                Path(outbox) / "result.pt",
            )
    except BaseException as exc:
        # Our own errors carry a message for a person; anything else keeps its traceback.
        # The first line says which: a rank that only lost its peers (their failure broke
        # a collective) must not hide the message of the rank that failed first.
        ours = isinstance(exc, HwProfilesError)
        message = str(exc) if ours else "".join(traceback.format_exception(exc)).strip()
        (Path(outbox) / f"rank{index}.txt").write_text(
            f"{int(ours)}\n{message or type(exc).__name__}", encoding="utf-8"
        )
        leave_group()
        raise
    exit_rank(0)


def launch(nproc: int, train: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    """Run ``train(**kwargs, _rank=rank)`` in ``nproc`` local processes; rank 0's results.

    ``train`` is :func:`hwprofiles.train.train` (passed in, so that this module needs
    nothing of the training loop); it must be importable by name in a fresh process.

    A process that fails stops the others at once (no rank waits out a timeout), and its
    message is raised here.

    Raises:
        DistributedTrainingError: a process failed (its rank and message are given).
    """
    with tempfile.TemporaryDirectory(prefix="hwprofiles-ddp-") as tmp:
        store = os.path.join(tmp, "store")
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level
        spawn_log.setLevel(logging.ERROR)  # "terminating process N": the error below says why, once
        try:
            mp.start_processes(
                _worker, args=(nproc, store, tmp, train, kwargs), nprocs=nproc, join=True, start_method="spawn"
            )
        except ProcessException as exc:
            reports = {
                int(p.stem[4:]): p.read_text(encoding="utf-8").split("\n", 1) for p in Path(tmp).glob("rank*.txt")
            }
            ours = sorted(r for r, (flag, _) in reports.items() if flag == "1")
            failed = (
                ours[0]
                if ours
                else exc.error_index
                if exc.error_index in reports
                else min(reports, default=exc.error_index)
            )
            cause = reports[failed][1] if failed in reports else str(exc).strip().splitlines()[-1]
            raise DistributedTrainingError(
                f"training process {failed} of {nproc} failed; the run stopped.\n{cause}"
            ) from None
        finally:
            spawn_log.setLevel(level)
        return torch.load(Path(tmp) / "result.pt", weights_only=True)
