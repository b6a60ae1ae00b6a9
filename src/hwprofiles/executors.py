"""Where independent units of work run: in this process, or as tasks on a Ray cluster.

An executor maps a function over tasks and reports each result (or failure) to a
callback in the driver, as it arrives. The driver alone writes results, so the
results store needs no locking across machines and a grid started again skips what
is already done.

``local`` (the default) runs each task here, in order, and imports no Ray. ``ray``
runs each as a Ray task: ``address=None`` starts a Ray instance on this machine,
``"auto"`` joins the cluster this machine belongs to, ``"ray://host:10001"`` or
``"host:6379"`` joins that one (also ``$HWPROFILES_RAY_ADDRESS``). A worker process or
node that dies mid-task has its task retried elsewhere (``max_retries``); an error the
task raises itself is reported, not retried.

    >>> executor = get_executor("local")
    >>> results = []
    >>> executor.map(pow, [(2, 3), (3, 2)], lambda i, value, error: results.append((i, value, error)))
    >>> results
    [(0, 8, None), (1, 9, None)]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from hwprofiles.errors import HwProfilesError

RAY_ADDRESS_ENV = "HWPROFILES_RAY_ADDRESS"
EXECUTORS = ("local", "ray")

# What every executor's map() takes: a function, its argument tuples, the driver's
# callbacks (result or error of task i; task i started) and a device per task.
Task = Callable[..., Any]
Tasks = Sequence[tuple[Any, ...]]
OnResult = Callable[[int, Any, "BaseException | None"], None]
OnStart = Callable[[int], None] | None
Devices = Sequence[str] | None


class Executor(Protocol):
    name: str

    def map(
        self, fn: Task, tasks: Tasks, on_result: OnResult, *, devices: Devices = None, on_start: OnStart = None
    ) -> None:
        """Run ``fn(*task)`` for every task; call ``on_result(index, value, error)`` in
        the driver as each one ends (``error`` is None on success)."""


class LocalExecutor:
    """Every task in this process, one after another."""

    name = "local"

    def map(
        self, fn: Task, tasks: Tasks, on_result: OnResult, *, devices: Devices = None, on_start: OnStart = None
    ) -> None:
        for index, task in enumerate(tasks):
            if on_start is not None:
                on_start(index)
            try:
                value = fn(*task)
            except (HwProfilesError, ValueError, RuntimeError, KeyError, OSError) as exc:  # the task's own fault
                on_result(index, None, exc)
            else:
                on_result(index, value, None)


class RayExecutor:
    """Each task as a Ray task, on ``threads_per_task`` CPUs (and a GPU when its device is CUDA).

    Large arguments (models, test batches) are put in Ray's object store once and
    shared by every task that uses them, so workers need no shared disk.

    Args:
        address: the cluster to join (see the module docstring); None starts Ray here.
        num_cpus: CPUs of a Ray started here (default: all).
        threads_per_task: torch threads (and CPUs requested) per task. The default, the
            driver's own thread count, makes every number identical to a local run:
            float sums over threads can differ in the last bit between thread counts,
            and a trained model with them. Fewer threads run more tasks at once.
        max_retries: how often a task whose worker or node died is started again.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        threads_per_task: int | None = None,
        max_retries: int = 3,
    ) -> None:
        address = address or os.environ.get(RAY_ADDRESS_ENV) or None
        if address is None:
            # A Ray of our own, on this machine alone: keep it on the loopback interface.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        else:
            _check_reachable(address)
        try:
            import ray
        except ImportError:
            raise HwProfilesError("--executor ray needs Ray: pip install 'hwprofiles[ray]'") from None
        import torch

        self.ray = ray
        self.threads_per_task = threads_per_task or torch.get_num_threads()
        self.max_retries = max_retries
        if not ray.is_initialized():
            try:
                ray.init(
                    address=address or "local",
                    num_cpus=num_cpus if address is None else None,
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise HwProfilesError(
                    f"cannot join the Ray cluster at {address!r}: {exc}. Start one with `ray start --head`, "
                    "or leave --ray-address out to run Ray on this machine."
                ) from None

    def _fit_threads(self) -> int:
        """Threads per task, no more than the largest node has CPUs (a task asking for more
        would wait for ever)."""
        largest = max(
            (node.get("Resources", {}).get("CPU", 0) for node in self.ray.nodes() if node.get("Alive")), default=0
        )
        return max(1, min(self.threads_per_task, int(largest))) if largest else self.threads_per_task

    def map(
        self, fn: Task, tasks: Tasks, on_result: OnResult, *, devices: Devices = None, on_start: OnStart = None
    ) -> None:
        ray = self.ray
        threads = self._fit_threads()
        remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(_call)
        store = _ObjectStore(ray)
        pending: dict[Any, int] = {}
        for index, task in enumerate(tasks):
            gpus = 1 if devices is not None and str(devices[index]).startswith("cuda") else 0
            args = [store.travelling(arg) for arg in task]
            ref = remote.options(num_cpus=threads, num_gpus=gpus).remote(fn, threads, *args)
            pending[ref] = index
            if on_start is not None:
                on_start(index)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the task raised: report its own error
                    on_result(index, None, exc.cause if exc.cause is not None else exc)
                except ray.exceptions.RayError as exc:  # retries used up: a worker or node kept dying
                    on_result(index, None, HwProfilesError(f"Ray gave up on the task: {exc}"))
                else:
                    on_result(index, value, None)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a ``host:port`` cluster address that nothing answers at, at once (Ray itself
    would wait for minutes)."""
    import socket

    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise HwProfilesError(f"--ray-address {address!r}: give auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise HwProfilesError(
            f"cannot join the Ray cluster at {address!r}: nothing answers there ({exc.strerror or exc}). "
            "Start one with `ray start --head`, or leave --ray-address out to run Ray on this machine."
        ) from None


@runtime_checkable
class Shareable(Protocol):
    """A task argument with large parts that a remote executor sends once and shares
    between the tasks that use them (an evaluation request's model and batches)."""

    def large_parts(self) -> dict[str, Any]:
        """The large values, by name."""

    def with_parts(self, parts: dict[str, Any]) -> Any:
        """A copy with ``parts`` (named as in :meth:`large_parts`) in place of its own."""


class _SharedParts:
    """A :class:`Shareable` travelling to a worker: stripped of its large parts, with
    object-store references to them."""

    def __init__(self, light: Shareable, refs: dict[str, Any]) -> None:
        self.light = light
        self.refs = refs


class _ObjectStore:
    """Puts each value in Ray's object store once per run, however many tasks use it."""

    def __init__(self, ray: Any) -> None:
        self.ray = ray
        self.refs: dict[int, tuple[Any, Any]] = {}  # id -> (value kept alive so ids stay unique, ref)

    def put(self, value: Any) -> Any:
        """A reference to ``value`` in the object store, put there on first use."""
        if id(value) not in self.refs:
            self.refs[id(value)] = (value, self.ray.put(value))
        return self.refs[id(value)][1]

    def travelling(self, arg: Any) -> Any:
        """A task argument as it travels: plain values as they are, a Shareable's large
        parts as references, anything else put in the store (Ray resolves it for the worker)."""
        if isinstance(arg, (str, int, float, bool, type(None))) or callable(arg):
            return arg
        if not isinstance(arg, Shareable):
            return self.put(arg)
        parts = arg.large_parts()
        light = arg.with_parts(dict.fromkeys(parts))
        return _SharedParts(light, {name: self.put(value) for name, value in parts.items()})


def _call(fn: Callable[..., Any], threads: int, *args: Any) -> Any:
    """Runs on the worker: use the driver's thread count, resolve shared parts, call ``fn``."""
    import torch

    torch.set_num_threads(threads)
    resolved = []
    for arg in args:
        if isinstance(arg, _SharedParts):
            import ray

            arg = arg.light.with_parts({name: ray.get(ref) for name, ref in arg.refs.items()})
        resolved.append(arg)
    return fn(*resolved)


def get_executor(name: str = "local", *, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus=num_cpus)
    raise HwProfilesError(f"unknown executor '{name}': use {' or '.join(EXECUTORS)}")
