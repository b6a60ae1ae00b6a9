"""``hwprofiles study GRID``: a study grid file runs transfer matrices over models and
training seeds; a bad file is one message naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_cli_experiments import ok

from hwprofiles.eval.study import load_study_grid

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "study-grid.example.yaml"

# Two training seeds of one small model on the synthetic data: six training runs, seconds each.
TINY = """\
models: [lenet5]
seeds: [0, 1]
dataset: synthetic
train_profiles: [gaussian-additive]
eval_profiles: [ideal, gaussian-additive]
samples: 2
training:
  epochs: 1
  batch_size: 32
  lr: 0.005
  width: 0.5
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def grid_error(result, *needles: str):
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result


def test_a_study_grid_trains_and_evaluates_every_model_and_seed(cli, workdir):
    (workdir / "grid.yaml").write_text(TINY)
    result = ok(cli("study", "grid.yaml", "--quiet", "--json", "--results", "r.sqlite", "-o", "st"))
    report = json.loads(result.stdout)  # stdout is one JSON document
    assert "training clean" in result.stderr
    matrices = {}
    for seed in (0, 1):
        matrices[seed] = json.loads((workdir / "st" / f"lenet5-s{seed}" / "transfer.json").read_text())
        assert matrices[seed]["rows"] == ["clean", "qat", "nit:gaussian-additive"]
        assert matrices[seed]["cols"] == ["ideal", "gaussian-additive"]
        assert (workdir / "st" / f"lenet5-s{seed}" / "checkpoints" / f"lenet5-clean-s{seed}.pt").exists()
    assert [(r["model"], r["seed"]) for r in report["runs"]] == [("lenet5", 0), ("lenet5", 1)]
    assert [r["matrix"]["accuracy"] for r in report["runs"]] == [matrices[0]["accuracy"], matrices[1]["accuracy"]]
    summary = report["summary"]["lenet5"]
    for i, row in enumerate(summary["rows"]):
        for j, col in enumerate(summary["cols"]):
            per_seed = [matrices[s]["accuracy"][f"{row} | {col}"]["mean"] for s in (0, 1)]
            assert summary["mean"][i][j] == pytest.approx(sum(per_seed) / 2)
            assert summary["std"][i][j] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2**0.5)
    assert json.loads((workdir / "st" / "study.json").read_text())["summary"] == report["summary"]
    assert "| trained \\ evaluated | ideal | gaussian-additive |" in (workdir / "st" / "study.md").read_text()

    # Every chip instance of every cell is in the results store, under both seeds' checkpoints.
    evals = json.loads(ok(cli("results", "export", "--format", "json", "--results", "r.sqlite")).stdout)
    assert len(evals) >= 2 * 3 * 2 * 2  # seeds x rows x columns x chips
    assert {Path(e["checkpoint"]).parent.parent.name for e in evals} == {"lenet5-s0", "lenet5-s1"}

    # Run again: the finished checkpoints and the stored chip instances are reused.
    again = ok(cli("study", "grid.yaml", "--quiet", "--results", "r.sqlite", "-o", "st"))
    assert again.stdout.count("reusing finished checkpoint") == 6
    assert "mean accuracy over training seeds 0, 1" in again.stdout


def test_check_prints_the_grid_with_its_defaults_without_running(cli, workdir):
    (workdir / "grid.yaml").write_text("models: [lenet5, resnet20]\n")
    result = ok(cli("study", "grid.yaml", "--check", "-o", "st"))
    grid = yaml.safe_load(result.stdout)
    assert grid["models"] == ["lenet5", "resnet20"] and grid["seeds"] == [0] and grid["samples"] == 5
    assert grid["training"]["epochs"] == 3 and grid["scale_mode"] == "published"
    assert not (workdir / "st").exists()


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("models: [lenet5]\nseed: [1]\n", ["grid.yaml: seed: unknown field; did you mean 'seeds'"]),
        (
            "models: [lenet5]\ntraining: {epoch: 2}\n",
            ["grid.yaml: training.epoch: unknown field; did you mean 'epochs'"],
        ),
        ("models: [lenet5]\nsamples: many\n", ["grid.yaml: samples: Input should be a valid integer"]),
        ("models: [lenet5]\nseeds: 0\n", ["grid.yaml: seeds: Input should be a valid list"]),
        ("models: [lenet5]\ntraining: {epochs: 0}\n", ["grid.yaml: training.epochs: Input should be greater than"]),
        (
            "models: [lenet5]\ntraining: {download: 1}\n",
            ["grid.yaml: training.download: Input should be a valid boolean"],
        ),
        ("models: [lenet5]\nscale_mode: fair\n", ["grid.yaml: scale_mode: Input should be 'published' or 'matched'"]),
        ("seeds: [0]\n", ["grid.yaml: models: Field required"]),
        ("models: []\n", ["grid.yaml: models: List should have at least 1 item"]),
        ("models: [lenet5]\nseeds: [0, 1, 0]\n", ["grid.yaml: seeds: 0 listed twice"]),
        ("- lenet5\n", ["grid.yaml: a study grid is a mapping of fields"]),
        ("", ["grid.yaml: a study grid is a mapping of fields", "not an empty file"]),
        ("models: [lenet]\n", ["grid.yaml: models: unknown model 'lenet'. Did you mean 'lenet5'"]),
        (
            "models: [lenet5]\neval_profiles: [pcm-joshi]\n",
            ["grid.yaml: eval_profiles: no profile named 'pcm-joshi'. Did you mean 'pcm-joshi2020'"],
        ),
        ("models: !!python/name:os.system\n", ["grid.yaml", "not valid YAML"]),
    ],
)
def test_a_bad_grid_is_one_message_naming_the_file_and_field(cli, workdir, text, needles):
    (workdir / "grid.yaml").write_text(text)
    grid_error(cli("study", "grid.yaml", "--quiet", "-o", "st"), *needles)
    assert not (workdir / "st").exists()


def test_a_missing_grid_file_is_named(cli, workdir):
    grid_error(cli("study", "nowhere.yaml"), "nowhere.yaml: no such file")


def test_the_documented_example_is_a_valid_grid():
    grid = load_study_grid(EXAMPLE)
    assert len(grid.models) >= 2 and len(grid.seeds) >= 2 and grid.eval_profiles
