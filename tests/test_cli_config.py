"""Config files: ``--config run.yaml`` sets option values, the command line overrides them, and
``--print-config`` writes a file that reads back as the same run."""

from __future__ import annotations

import pytest
import yaml
from test_cli_experiments import TRAIN, ok

from hwprofiles.train import load_checkpoint

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

EXPERIMENTS = ["train", "eval", "sweep", "transfer", "demo"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config_error(result, *needles: str):
    """One clean ``error:`` block naming what is wrong; exit 2, no traceback."""
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("error:") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result


def test_print_config_then_config_trains_the_same_run(cli, workdir):
    flags = [*TRAIN, "--epochs", "1", "--method", "nit", "--profile", "gaussian-additive", "-o", "m.pt"]
    printed = ok(cli(*flags, "--print-config"))
    assert not (workdir / "m.pt").exists(), "--print-config does not train"
    written = yaml.safe_load(printed.stdout)
    assert written["epochs"] == 1 and written["batch-size"] == 32 and written["method"] == "nit"
    (workdir / "run.yaml").write_text(printed.stdout)

    ok(cli("train", "--config", "run.yaml"))
    config = load_checkpoint(workdir / "m.pt")["meta"]["config"]
    assert (config["epochs"], config["batch_size"], config["lr"], config["width"]) == (1, 32, 5e-3, 0.5)
    assert (config["method"], config["profile"], config["dataset"]) == ("nit", "gaussian-additive", "synthetic")
    # Printing again from the file gives the file back.
    assert ok(cli("train", "--config", "run.yaml", "--print-config")).stdout == printed.stdout


def test_the_command_line_overrides_the_file_and_underscores_are_dashes(cli, workdir):
    (workdir / "run.yaml").write_text("batch_size: 16\nepochs: 4\nmethod: qat\nquiet: true\n")
    printed = yaml.safe_load(ok(cli("train", "--config", "run.yaml", "--epochs", "2", "--print-config")).stdout)
    assert (printed["batch-size"], printed["epochs"], printed["method"], printed["quiet"]) == (16, 2, "qat", True)
    # The option order does not matter: --config is read before the others.
    printed = yaml.safe_load(ok(cli("train", "--epochs", "2", "--config", "run.yaml", "--print-config")).stdout)
    assert printed["epochs"] == 2


def test_a_flag_set_in_the_file_is_switched_off_on_the_command_line(cli, workdir):
    (workdir / "run.yaml").write_text("quiet: true\ndownload: true\n")
    printed = yaml.safe_load(ok(cli("train", "--config", "run.yaml", "--no-quiet", "--print-config")).stdout)
    assert (printed["quiet"], printed["download"]) == (False, True)
    (workdir / "eval.yaml").write_text("conversion: true\n")
    printed = yaml.safe_load(ok(cli("eval", "--config", "eval.yaml", "--no-conversion", "--print-config")).stdout)
    assert printed["conversion"] is False


def test_repeatable_options_and_arguments_take_lists(cli, workdir):
    (workdir / "eval.yaml").write_text("checkpoints: [a.pt, b.pt]\nprofile: [ideal, gaussian-additive]\nsamples: 3\n")
    printed = yaml.safe_load(ok(cli("eval", "--config", "eval.yaml", "--print-config")).stdout)
    assert printed["checkpoints"] == ["a.pt", "b.pt"] and printed["profile"] == ["ideal", "gaussian-additive"]
    assert printed["samples"] == 3
    (workdir / "one.yaml").write_text("profile: ideal\n")  # one value for a repeatable option
    assert yaml.safe_load(ok(cli("eval", "--config", "one.yaml", "--print-config")).stdout)["profile"] == ["ideal"]


@pytest.mark.parametrize("command", EXPERIMENTS)
def test_every_experiment_command_round_trips_its_printed_config(cli, workdir, command):
    printed = ok(cli(command, "--print-config")).stdout
    assert printed.startswith(f"# hwprofiles {command}: ")
    (workdir / "run.yaml").write_text(printed)
    assert ok(cli(command, "--config", "run.yaml", "--print-config")).stdout == printed


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("epocs: 3\n", ["run.yaml: epocs: hwprofiles train has no option --epocs", "Did you mean 'epochs'"]),
        ("epochs: three\n", ["run.yaml: epochs:", "integer"]),
        ("epochs: 0\n", ["run.yaml: epochs:", "greater than or equal to 1"]),
        ("epochs: 2.5\n", ["run.yaml: epochs:", "integer"]),
        ("lr: yes\n", ["run.yaml: lr: expected float, not true"]),
        ("quiet: 1\n", ["run.yaml: quiet: expected true or false, not 1"]),
        ("schedule: nope\n", ["run.yaml: schedule:", "'constant', 'ramp'"]),
        ("method: [nit, qat]\n", ["run.yaml: method: takes one value, not a list"]),
        ("model: {name: lenet5}\n", ["run.yaml: model: expected str, not a dict"]),
        ("epochs: 2\nbatch-size: 1\nbatch_size: 2\n", ["run.yaml: batch_size: given twice"]),
        ("- epochs\n", ["run.yaml: a config file is a mapping of option names to values"]),
        ("config: other.yaml\n", ["run.yaml: config: hwprofiles train has no option --config"]),
        ("epochs: !!python/object/apply:os.system [ls]\n", ["run.yaml", "not valid YAML"]),
    ],
)
def test_a_bad_config_file_is_one_message_naming_the_file_and_key(cli, workdir, text, needles):
    (workdir / "run.yaml").write_text(text)
    config_error(cli(*TRAIN, "--config", "run.yaml", "-o", "m.pt"), *needles)
    assert not (workdir / "m.pt").exists()


def test_a_missing_config_file_is_named(cli, workdir):
    config_error(cli("sweep", "--config", "nowhere.yaml"), "nowhere.yaml: no such file")


def test_an_empty_config_file_changes_nothing(cli, workdir):
    (workdir / "empty.yaml").write_text("# nothing yet\n")
    assert (
        ok(cli("demo", "--config", "empty.yaml", "--print-config")).stdout == ok(cli("demo", "--print-config")).stdout
    )


def test_null_means_the_built_in_default(cli, workdir):
    (workdir / "run.yaml").write_text("epochs: null\nout: null\n")
    printed = yaml.safe_load(ok(cli("transfer", "--config", "run.yaml", "--print-config")).stdout)
    assert printed["epochs"] == 3 and printed["out"] == "hwprofiles-out/transfer"
