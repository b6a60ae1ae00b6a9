"""The experiment commands end to end on the synthetic dataset (seconds each)."""

from __future__ import annotations

import json

import pytest

TRAIN = [
    "train",
    "--dataset",
    "synthetic",
    "--model",
    "lenet5",
    "--width",
    "0.5",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--lr",
    "5e-3",
    "--quiet",
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# A transfer matrix small enough for a test: one training profile, two columns, two chips.
SMALL_TRANSFER = (
    "transfer --model lenet5 --width 0.5 --dataset synthetic --epochs 1 --batch-size 64 "
    "--train-profile gaussian-additive --eval-profile ideal --eval-profile gaussian-additive -k 2 --quiet"
).split()


def ok(result):
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


def failed(result):
    assert result.exit_code != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error:")
    return result


def test_train_eval_sweep_and_export(cli, workdir):
    ok(cli(*TRAIN, "-o", "clean.pt"))
    ok(cli(*TRAIN, "--method", "nit", "--profile", "gaussian-additive", "-o", "nit.pt"))
    ok(cli(*TRAIN, "--method", "qat", "--bits", "4", "--act-scale", "0.5", "-o", "qat.pt"))
    result = ok(
        cli(
            "eval",
            "clean.pt",
            "nit.pt",
            "qat.pt",
            "-p",
            "gaussian-additive",
            "-p",
            "rram-hfox",
            "-k",
            "2",
            "--quiet",
            "--json-out",
            "eval.json",
        )
    )
    rows = json.loads((workdir / "eval.json").read_text())
    assert {(r["trained"], r["profile"]) for r in rows} == {
        (t, p) for t in ("clean", "nit:gaussian-additive", "qat") for p in ("gaussian-additive", "rram-hfox")
    }
    assert all(r["n"] == 2 and r["ci_low"] <= r["mean"] <= r["ci_high"] for r in rows)
    assert "95% CI" in result.stdout
    # --json: the same rows as one JSON document on stdout, nothing else there.
    as_json = ok(
        cli("eval", "clean.pt", "nit.pt", "qat.pt", "-p", "gaussian-additive", "-p", "rram-hfox", "-k", "2", "--json")
    )
    assert json.loads(as_json.stdout) == rows
    # --json is a flag now: a file after it is refused with the option that writes one.
    moved = cli("eval", "clean.pt", "-p", "ideal", "--json", "e.json")
    assert moved.exit_code == 2 and "--json-out e.json" in " ".join(moved.stderr.replace("│", " ").split())
    assert not (workdir / "e.json").exists()

    result = ok(cli("sweep", "clean.pt", "nit.pt", "--points", "5", "-k", "2", "--quiet", "-o", "sw"))
    assert "midpoint" in result.stdout and "halfway from clean accuracy to chance" in result.stdout
    report = json.loads((workdir / "sw" / "sweep-noise-gaussian-additive.json").read_text())
    assert len(report["models"]["clean"]["points"]) == 5
    assert (workdir / "sw" / "sweep-noise-gaussian-additive.png").stat().st_size > 1000
    printed = ok(cli("sweep", "clean.pt", "--over", "time", "-p", "pcm-joshi2020", "-k", "1", "--json", "-o", "sw"))
    times = json.loads((workdir / "sw" / "sweep-time-pcm-joshi2020.json").read_text())
    assert json.loads(printed.stdout) == times and "written to" in printed.stderr
    assert [p["x"] for p in times["models"]["clean"]["points"]] == [1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
    ok(cli("sweep", "clean.pt", "--over", "layer", "-p", "gaussian-additive", "-k", "1", "--quiet", "-o", "sw"))
    layers = json.loads((workdir / "sw" / "sweep-layer-gaussian-additive.json").read_text())["models"]["clean"][
        "layers"
    ]
    assert "<input>" in layers and len(layers) > 5
    assert (workdir / "sw" / "sweep-layer-gaussian-additive-clean.png").exists()

    # batch norm re-estimated on each chip: other results, keyed by the data it was re-estimated on
    before = len(json.loads(ok(cli("results", "export", "--format", "json")).stdout))
    ok(cli("eval", "clean.pt", "-p", "gaussian-additive", "-k", "2", "--quiet", "--recalibrate-bn"))
    evals = json.loads(ok(cli("results", "export", "--format", "json")).stdout)
    recalibrated = [r for r in evals if r["bn_recalibration_hash"]]
    assert len(evals) == before + 2 and len(recalibrated) == 2 and {r["seed"] for r in recalibrated} == {0, 1}

    exported = ok(cli("results", "export", "--format", "json"))
    evals = json.loads(exported.stdout)
    assert len(evals) >= 12 and {"checkpoint", "eval_profile", "seed", "accuracy"} <= set(evals[0])
    csv_text = ok(cli("results", "export", "--format", "csv", "--table", "runs")).stdout
    assert csv_text.splitlines()[0].startswith("model_hash,checkpoint,model,dataset,method")
    assert len(csv_text.splitlines()) == 4


def test_transfer_writes_matrix_files(cli, workdir):
    args = (
        "transfer --dataset synthetic --width 0.5 --epochs 1 --batch-size 32 --lr 5e-3 "
        "--train-profile gaussian-additive --train-profile rram-hfox "
        "--eval-profile gaussian-additive --eval-profile rram-hfox --eval-profile ideal -k 2 --quiet -o tr "
        "--mixed gaussian-additive,rram-hfox:2"
    ).split()
    result = ok(cli(*args))
    assert "Transfer efficiency" in result.stdout and "Worst off-diagonal" in result.stdout
    data = json.loads((workdir / "tr" / "transfer.json").read_text())
    mixed = "nit:gaussian-additive+rram-hfox"
    assert data["rows"] == ["clean", "qat", "nit:gaussian-additive", "nit:rram-hfox", mixed]
    assert data["cols"] == ["gaussian-additive", "rram-hfox", "ideal"]
    eff = data["transfer_efficiency"]
    assert eff[2][0] == pytest.approx(1.0) and eff[3][1] == pytest.approx(1.0) and eff[0][2] is None
    lowest = min(eff[4][:2])
    assert f"{mixed} keeps at least **{lowest:.3f}** of the matched" in result.stdout
    for name in ("transfer.csv", "transfer.md", "transfer.png", "transfer-efficiency.png"):
        assert (workdir / "tr" / name).stat().st_size > 0
    # A second run reuses the finished checkpoints and the stored chip instances.
    again = ok(cli(*args, "--json"))
    assert again.stderr.count("reusing finished checkpoint") == 5
    assert json.loads((workdir / "tr" / "transfer.json").read_text())["accuracy"] == data["accuracy"]
    assert json.loads(again.stdout) == json.loads((workdir / "tr" / "transfer.json").read_text())


def test_missing_data_says_where_it_looked_and_how_to_get_it(cli, workdir, monkeypatch):
    import hwprofiles.data.locate as locate

    monkeypatch.setattr(locate, "DEBIAN_DATASET_DIRS", {k: workdir / "nowhere" for k in locate.DEBIAN_DATASET_DIRS})
    monkeypatch.setenv("XDG_CACHE_HOME", str(workdir / "cache"))
    result = failed(
        cli(
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-root",
            str(workdir),
            "--quiet",
            env={"XDG_CACHE_HOME": str(workdir / "cache")},
        )
    )
    assert "apt-get install dataset-fashion-mnist" in result.stderr and "--data-root" in result.stderr
    assert str(workdir) in result.stderr


def test_corrupt_checkpoint_is_refused_cleanly(cli, workdir):
    (workdir / "bad.pt").write_bytes(b"\x00garbage")
    result = failed(cli("eval", "bad.pt", "-p", "ideal"))
    assert "bad.pt" in result.stderr and "not a valid hwprofiles checkpoint" in result.stderr


def test_unknown_profile_and_method_are_clean_errors(cli, workdir):
    failed(cli(*TRAIN, "--method", "nit", "--profile", "pcm-joshi"))
    result = failed(cli(*TRAIN, "--method", "magic"))
    assert "unknown training method 'magic'" in result.stderr
    assert "Valid training methods: clean, nit, qat, qat-learned, vant" in result.stderr
    result = failed(cli(*TRAIN, "--method", "nit"))
    assert "--profile" in result.stderr


def test_demo_quick_writes_a_report(cli, workdir):
    result = ok(cli("demo", "--quick", "-k", "2", "--quiet", "-o", "demo"))
    report = (workdir / "demo" / "report.md").read_text()
    assert "| trained \\ evaluated |" in report and "nit:gaussian-additive" in report and "nit:all" in report
    # it opens with the finding: every model's midpoint, and accuracies with their intervals over chips
    finding = report.split("## What this shows", 1)[1].split("## Summary", 1)[0]
    assert all(f"for {row}" in finding for row in ("clean", "qat", "nit:gaussian-additive", "nit:all"))
    assert "95% interval over 2 chips" in finding and "Trained under every profile at once, nit:all" in finding
    assert (workdir / "demo" / "lenet5" / "transfer.png").exists()
    assert (workdir / "demo" / "sweep-gaussian-additive-lenet5.png").exists()
    assert "report written to" in result.stdout
