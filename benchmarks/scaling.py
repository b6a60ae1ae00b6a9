"""Scale-out: the small study's evaluation grid with the local executor and with Ray.

Trains (or reuses) the small budget's models of one or more architectures, then runs
the grid the study evaluates for each architecture (every model x 9 noise levels x K=5
chip instances, plus each model's noise-free point) once per executor, interleaved, each
time into a fresh results store so every cell is measured. Reports wall time per executor
and their ratio, the compute time per cell as the workers measured it, and Ray's overhead
per task (wall time beyond the compute, divided by the tasks). On one machine both
executors share the same cores, so the ratio is expected near 1; the per-cell costs feed
the cost model in docs/scaling.md.

    python benchmarks/scaling.py                      # LeNet-5 and ResNet-20 x0.5, 2 repeats
    python benchmarks/scaling.py --archs lenet5 --repeats 1

Writes docs/results/scaling.json and prints a Markdown table. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
WIDTHS = {"lenet5": 1.0, "resnet20": 0.5, "vgg11": 0.25, "mobilenetv2": 0.25}


def models_for(arch: str, splits: Any, work: Path) -> list[Any]:
    """The small budget's models of ``arch``: clean, QAT at two scales, NIT at two sigmas."""
    from hwprofiles.eval import load_trained
    from hwprofiles.train import TrainConfig, train

    base = dict(
        model=arch,
        dataset="fashion-mnist",
        epochs=3,
        batch_size=64,
        seed=0,
        width=WIDTHS[arch],
        train_subset=3000,
        test_subset=300,
    )
    configs = {
        "clean": TrainConfig(**base),
        "qat-a0.25": TrainConfig(**base, method="qat", act_scale=0.25),
        "qat-a2": TrainConfig(**base, method="qat", act_scale=2.0),
        "nit-x3": TrainConfig(**base, method="nit", profile="gaussian-additive", noise_scale=3.0),
        "nit-x10": TrainConfig(**base, method="nit", profile="gaussian-additive", noise_scale=10.0),
    }
    trained = []
    for name, config in configs.items():
        path = work / f"{arch}-{name}.pt"
        if not path.exists():
            train(config, path, progress=False, data=splits)
        trained.append(load_trained(path, splits))
    return trained


def grid(models: list[Any], loaders: Any, test_set: str) -> list[Any]:
    from hwprofiles.eval.chips import checkpoint_request
    from hwprofiles.eval.sweep import log_grid

    requests = []
    for trained in models:
        requests += [
            checkpoint_request(trained, "gaussian-additive", loaders, samples=5, noise_scale=s, test_set=test_set)
            for s in log_grid(0.1, 1000.0, 9)
        ]
        requests.append(checkpoint_request(trained, "ideal", loaders, samples=1, test_set=test_set))
    return requests


def run_once(requests: list[Any], executor: Any) -> dict[str, float]:
    from hwprofiles.eval.grid import GridStats, run_requests
    from hwprofiles.results import ResultsStore

    with tempfile.TemporaryDirectory() as scratch:
        store = ResultsStore(Path(scratch) / "r.sqlite")  # fresh: every cell is measured
        stats = GridStats()
        started = time.perf_counter()
        results = run_requests(requests, store=store, executor=executor, stats=stats)
        wall = time.perf_counter() - started
    assert all(r is not None for r in results), stats.failures
    return {
        "wall_s": wall,
        "compute_s": stats.compute_s,
        "tasks": len(requests),
        "chips": stats.chips_measured,
        "accuracies": [list(r.accuracies) for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="lenet5,resnet20", help="comma-separated (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats per executor")
    parser.add_argument("--work-dir", default=str(ROOT / "hwprofiles-out" / "scaling"), help="checkpoints")
    parser.add_argument("--out", default=str(RESULTS / "scaling.json"))
    args = parser.parse_args(argv)

    from hwprofiles.data import load_dataset, make_loaders
    from hwprofiles.eval.chips import test_set_id
    from hwprofiles.executors import get_executor
    from hwprofiles.io import write_text

    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    splits = load_dataset("fashion-mnist", train_subset=3000, test_subset=300, seed=0)
    loaders = make_loaders(splits, 64, seed=0, test_batch_size=500)
    test_set = test_set_id(splits, 300)
    executors = {"local": get_executor("local"), "ray": get_executor("ray")}
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average_before": os.getloadavg(),
        "archs": {},
    }
    for arch in args.archs.split(","):
        models = models_for(arch, splits, work)
        requests = grid(models, loaders, test_set)
        runs: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
        for _ in range(args.repeats):
            for name, executor in executors.items():  # interleaved: load drifts hit both alike
                runs[name].append(run_once(requests, executor))
        same = all(r["accuracies"] == runs["local"][0]["accuracies"] for rs in runs.values() for r in rs)
        local_wall = statistics.median(r["wall_s"] for r in runs["local"])
        ray_wall = statistics.median(r["wall_s"] for r in runs["ray"])
        ray_compute = statistics.median(r["compute_s"] for r in runs["ray"])
        tasks = runs["ray"][0]["tasks"]
        report["archs"][arch] = {
            "models": len(models),
            "tasks": tasks,
            "chips": runs["local"][0]["chips"],
            "local_wall_s": local_wall,
            "ray_wall_s": ray_wall,
            "ray_over_local": ray_wall / local_wall,
            "compute_per_task_s": statistics.median(r["compute_s"] for r in runs["local"]) / tasks,
            # one task at a time on 2 cores (each task takes the driver's 2 threads): what is not compute is Ray's
            "ray_overhead_per_task_s": max(0.0, ray_wall - ray_compute) / tasks,
            "identical_numbers": same,
            "runs": {k: [{kk: vv for kk, vv in r.items() if kk != "accuracies"} for r in v] for k, v in runs.items()},
        }
        print(
            f"{arch}: {tasks} tasks, local {local_wall:.1f} s, ray {ray_wall:.1f} s "
            f"(x{ray_wall / local_wall:.2f}), identical numbers: {same}",
            flush=True,
        )
        report["load_average_after"] = os.getloadavg()
        write_text(args.out, json.dumps(report, indent=2))  # after each architecture: a long run keeps its parts
    print(
        "\n| arch | tasks | chips | local wall (s) | Ray wall (s) | Ray / local | compute per task (s) | Ray overhead per task (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for arch, r in report["archs"].items():
        print(
            f"| {arch} | {r['tasks']} | {r['chips']} | {r['local_wall_s']:.1f} | {r['ray_wall_s']:.1f} | "
            f"{r['ray_over_local']:.2f} | {r['compute_per_task_s']:.3f} | {r['ray_overhead_per_task_s']:.3f} |"
        )
    print(f"\nload average before {report['load_average_before']}, after {report['load_average_after']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
