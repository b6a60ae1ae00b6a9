"""I/O faults: read-only folders, a full disk, a locked or shared results database, kill -9.

Each fault ends in one message naming the path and what to do, and nothing already
written is damaged. Full and read-only disks are real (small tmpfs mounts) where the
tests may mount; elsewhere those tests are skipped.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import clean_env
from test_cli_experiments import TRAIN, failed

from hwprofiles.errors import OutputError, ResultsStoreError
from hwprofiles.io import atomic_write, write_text
from hwprofiles.results import ResultsStore


@pytest.fixture
def mount(tmp_path):
    """``mount(name, size_kb, read_only=False)``: a tmpfs folder of that size, unmounted after."""
    mounted: list[Path] = []

    def make(name: str, size_kb: int, read_only: bool = False) -> Path:
        where = tmp_path / name
        where.mkdir()
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


def fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:  # full
        pass
    finally:
        os.close(fd)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- files ---------------------------------------------------------------------------
def test_a_full_disk_keeps_the_previous_file_and_says_so(mount):
    disk = mount("disk", 64)
    write_text(disk / "report.json", "previous")
    fill(disk)
    with pytest.raises(
        OutputError, match=r"report.json: cannot be written \(No space left on device\); the disk is full"
    ):
        write_text(disk / "report.json", "x" * 100_000)
    assert (disk / "report.json").read_text() == "previous"
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "report.json"]  # no temporary left behind


def test_a_read_only_output_folder_is_a_clean_cli_error(cli, workdir, mount):
    ro = mount("ro", 64, read_only=True)
    result = failed(cli(*TRAIN, "--epochs", "1", "-o", str(ro / "m.pt")))
    assert "m.pt: cannot be written" in result.stderr and "read-only" in result.stderr
    result = failed(cli("results", "export", "--results", str(ro / "none.sqlite")))
    assert "none.sqlite: no such results database" in result.stderr


def test_a_full_disk_during_a_checkpoint_write_keeps_the_last_checkpoint(cli, workdir, mount):
    disk = mount("disk", 2048)
    first = disk / "m.pt"
    assert cli(*TRAIN, "--epochs", "1", "-o", str(first)).exit_code == 0
    before = first.read_bytes()
    fill(disk)
    result = failed(
        cli(*TRAIN, "--epochs", "1", "--seed", "1", "-o", str(first), "--results", str(workdir / "r.sqlite"))
    )
    assert "m.pt: cannot be written" in result.stderr
    assert first.read_bytes() == before


def test_a_results_database_in_a_read_only_folder_is_named(mount):
    ro = mount("ro", 64, read_only=True)
    with pytest.raises(ResultsStoreError, match="r.sqlite: cannot open the results database"):
        ResultsStore(ro / "r.sqlite")


def test_written_files_follow_the_umask_and_stale_temporaries_go(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
    dead = tmp_path / ".a.json.999999999.x.tmp"  # a writer that was killed
    live = tmp_path / f".a.json.{os.getpid()}.y.tmp"  # a writer still running
    dead.write_text("half")
    live.write_text("half")
    write_text(tmp_path / "a.json", "{}")
    assert not dead.exists() and live.exists()


def test_an_error_inside_the_write_leaves_the_old_file(tmp_path):
    write_text(tmp_path / "a.txt", "old")
    with pytest.raises(ZeroDivisionError):
        with atomic_write(tmp_path / "a.txt") as handle:
            handle.write("new")
            raise ZeroDivisionError
    assert (tmp_path / "a.txt").read_text() == "old" and len(list(tmp_path.iterdir())) == 1


# -- one database, many processes ---------------------------------------------------------
WRITER = textwrap.dedent("""
    import sys
    from dataclasses import dataclass
    from hwprofiles.eval.keys import ENGINE_VERSION
    from hwprofiles.results import ResultsStore

    @dataclass(frozen=True)
    class Key:  # the fields ResultsStore reads from an EvalKey
        id: str
        model: str = "m"; profile: str = "p"; data: str = "d"; calibration: str = ""
        seed: int = 0; layer: str = ""; batch_size: int = 0; device: str = "cpu"; engine_version: int = ENGINE_VERSION
        bn_recalibration: str = ""

    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = ResultsStore(path)
    for i in range(n):
        if who.startswith("reader"):
            store.rows("evals")
        else:
            store.put_eval(Key(id=f"{who}-{i}", seed=i), i / n, {"checkpoint": who})
    print("done", who)
""")


def run_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env()
    )


def test_four_writers_and_two_readers_share_one_database(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ResultsStore(path).close()
    procs = [run_python(WRITER, path, f"writer{w}", "60") for w in range(4)]
    procs += [run_python(WRITER, path, f"reader{r}", "60") for r in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err for _, err in outputs]
    rows = ResultsStore(path).rows("evals")
    assert len(rows) == 240 and len({r["key"] for r in rows}) == 240  # no row lost or doubled


def test_a_writer_waits_out_a_lock_held_for_30_seconds(tmp_path):
    path = tmp_path / "locked.sqlite"
    ResultsStore(path).close()
    holder = run_python(
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30); db.execute('COMMIT')\n",
        str(path),
    )
    assert holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    out = run_python(WRITER, str(path), "writer", "3")
    _, err = out.communicate(timeout=120)
    holder.wait(timeout=60)
    assert out.returncode == 0, err
    assert time.monotonic() - started > 20  # it really waited for the lock instead of failing
    assert len(ResultsStore(path).rows("evals")) == 3


def test_a_lock_held_past_the_budget_is_a_clean_error(tmp_path):
    path = tmp_path / "locked.sqlite"
    ResultsStore(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(ResultsStoreError, match="locked.sqlite: the results database stayed locked"):
            ResultsStore(path, lock_budget_s=0.5).record_run("m.pt", {}, None, True, model_hash="h")
        assert time.monotonic() - started < 5  # the budget, not SQLite's own wait, decides
    finally:
        db.execute("ROLLBACK")


# -- kill -9 -----------------------------------------------------------------------------
def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got far enough"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_kill_9_during_training_keeps_every_finished_epoch(workdir):
    from hwprofiles.train import load_checkpoint

    args = [sys.executable, "-m", "hwprofiles", *TRAIN, "--epochs", "8", "-o", "m.pt", "--results", "r.sqlite"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())

    def two_epochs() -> bool:
        try:
            return load_checkpoint(workdir / "m.pt")["epoch"] >= 2
        except Exception:  # noqa: BLE001 - not there yet
            return False

    _kill_when(proc, two_epochs)
    state = load_checkpoint(workdir / "m.pt")  # whole, never half-written
    done = state["epoch"]
    assert done >= 2 and len(state["history"]) == done
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, env=clean_env())
    assert resumed.returncode == 0, resumed.stderr
    final = load_checkpoint(workdir / "m.pt")
    assert final["epoch"] == 8 and final["history"][:done] == state["history"]
    assert not list(workdir.glob(".m.pt.*.tmp"))  # the killed writer's temporary is gone


def test_kill_9_during_an_evaluation_keeps_every_stored_chip(cli, workdir):
    assert cli(*TRAIN, "--epochs", "1", "-o", "m.pt").exit_code == 0
    args = [
        sys.executable,
        "-m",
        "hwprofiles",
        "eval",
        "m.pt",
        "-p",
        "gaussian-additive",
        "-k",
        "60",
        "--quiet",
        "--results",
        "r.sqlite",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())

    def some_rows() -> bool:
        try:
            return len(ResultsStore(workdir / "r.sqlite").rows("evals")) >= 5
        except Exception:  # noqa: BLE001 - not created yet
            return False

    _kill_when(proc, some_rows)
    db = sqlite3.connect(workdir / "r.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    kept = {r["key"]: r["accuracy"] for r in ResultsStore(workdir / "r.sqlite").rows("evals")}
    assert 5 <= len(kept) < 60
    rerun = subprocess.run(args, capture_output=True, text=True, env=clean_env())
    assert rerun.returncode == 0, rerun.stderr
    after = {r["key"]: r["accuracy"] for r in ResultsStore(workdir / "r.sqlite").rows("evals")}
    assert len(after) == 60 and all(after[k] == v for k, v in kept.items())
