"""The results store (``hwprofiles.results``): every number stored is read back as it was
written, with the labels that say what it is; a file that cannot hold hwprofiles results
is refused with its name; a lock held by another process is waited out, within a budget.

Fast (no model is trained or evaluated); the multi-process and 30 s lock checks live in
``test_faults.py``.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hwprofiles import results
from hwprofiles.errors import ResultsStoreError
from hwprofiles.eval.keys import ENGINE_VERSION, EvalKey
from hwprofiles.results import LABELS, SCHEMA_VERSION, ResultsStore, default_db_path, export_rows, now_iso


def key(seed: int = 0, **changes) -> EvalKey:
    base = EvalKey(model="m" * 64, profile="p" * 64, data="d" * 64, calibration="c" * 64, seed=seed)
    return replace(base, **changes)


# -- where the database lives ------------------------------------------------------------------
def test_the_default_file_and_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(results.DB_ENV, raising=False)
    assert default_db_path() == Path("hwprofiles-out") / "results.sqlite"
    monkeypatch.chdir(tmp_path)
    store = ResultsStore()
    store.put_eval(key(), 0.5)
    store.close()
    assert (tmp_path / "hwprofiles-out" / "results.sqlite").is_file()  # the folder is made
    assert ResultsStore(tmp_path / "hwprofiles-out" / "results.sqlite").get_eval(key()) == 0.5

    monkeypatch.setenv(results.DB_ENV, str(tmp_path / "deep" / "er" / "mine.sqlite"))
    assert default_db_path() == tmp_path / "deep" / "er" / "mine.sqlite"
    ResultsStore().put_eval(key(1), 0.25)
    assert ResultsStore(tmp_path / "deep" / "er" / "mine.sqlite").get_eval(key(1)) == 0.25


def test_a_store_in_memory_writes_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = ResultsStore(":memory:")
    store.put_eval(key(), 0.5)
    assert store.get_eval(key()) == 0.5 and store.path == ":memory:"
    assert list(tmp_path.iterdir()) == []


def test_a_file_store_lets_readers_and_a_writer_work_at_once(tmp_path):
    ResultsStore(tmp_path / "r.sqlite").close()
    mode = sqlite3.connect(tmp_path / "r.sqlite").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


# -- what is stored -----------------------------------------------------------------------------
def test_every_column_of_an_evaluation_is_what_was_measured(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    k = key(3, layer="fc", batch_size=64, device="cuda", bn_recalibration="b" * 64)
    labels = {
        "checkpoint": Path("runs/a.pt"),
        "model": "lenet5",
        "method": "qat",
        "train_profile": None,
        "eval_profile": "pcm-joshi2020",
        "test_set": "synthetic/test/all",
    }
    before = datetime.now().astimezone() - timedelta(seconds=2)
    store.put_eval(k, 0.8125, labels, noise_scale=2.5, t_inference_s=3600.0)
    [row] = ResultsStore(tmp_path / "r.sqlite").rows("evals")
    assert row == {
        "key": k.id,
        "accuracy": 0.8125,
        "model_hash": "m" * 64,
        "profile_hash": "p" * 64,
        "data_hash": "d" * 64,
        "calibration_hash": "c" * 64,
        "seed": 3,
        "layer": "fc",
        "batch_size": 64,
        "device": "cuda",
        "engine_version": ENGINE_VERSION,
        "bn_recalibration_hash": "b" * 64,
        "noise_scale": 2.5,
        "t_inference_s": 3600.0,
        "checkpoint": "runs/a.pt",
        "model": "lenet5",
        "method": "qat",
        "train_profile": None,
        "eval_profile": "pcm-joshi2020",
        "test_set": "synthetic/test/all",
        "created": row["created"],
    }
    created = datetime.fromisoformat(row["created"])
    assert created.utcoffset() == timedelta(0) and created.microsecond == 0  # UTC, to the second
    assert before <= created <= datetime.now().astimezone() + timedelta(seconds=1)
    assert isinstance(store.get_eval(k), float) and store.get_eval(k) == 0.8125


def test_labels_are_optional_and_unknown_ones_write_nothing(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put_eval(key(0), 1)  # an int accuracy is stored as a number of the REAL column
    row = store.rows("evals")[0]
    assert all(row[c] is None for c in LABELS) and row["noise_scale"] is None and row["t_inference_s"] is None
    assert store.get_eval(key(0)) == 1.0
    with pytest.raises(ValueError, match=r"unknown label columns \['colour', 'size'\]"):
        store.put_eval(key(1), 0.5, {"colour": "red", "size": 3, "model": "m"})
    assert store.get_eval(key(1)) is None and len(store.rows("evals")) == 1


def test_a_chip_measured_again_replaces_its_row_and_other_keys_stay_apart(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    variants = [
        key(0),
        key(1),
        key(0, layer="fc"),
        key(0, batch_size=8),
        key(0, device="cuda"),
        key(0, engine_version=ENGINE_VERSION + 1),
        key(0, calibration=""),
    ]
    for i, k in enumerate(variants):
        store.put_eval(k, i / 10)
    assert [store.get_eval(k) for k in variants] == [i / 10 for i in range(len(variants))]
    store.put_eval(key(0), 0.99)
    rows = store.rows("evals")
    assert len(rows) == len(variants) and store.get_eval(key(0)) == 0.99
    assert [r["accuracy"] for r in rows] == [i / 10 for i in range(1, len(variants))] + [0.99]  # latest last


def test_training_runs_are_stored_by_model_hash(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    meta = {"config": {"model": "lenet5", "dataset": "mnist", "method": "nit", "profile": "pcm-joshi2020"}, "epoch": 3}
    store.record_run(Path("runs/a.pt"), meta, 0.91, False, model_hash="h1")
    store.record_run("b.pt", {}, None, True, model_hash="h2")
    store.record_run("runs/a.pt", meta, 0.93, True, model_hash="h1")  # the same model again: replaced
    runs = {r["model_hash"]: r for r in ResultsStore(tmp_path / "r.sqlite").rows("runs")}
    assert set(runs) == {"h1", "h2"}
    a = runs["h1"]
    assert (
        a["checkpoint"],
        a["model"],
        a["dataset"],
        a["method"],
        a["profile"],
        a["clean_accuracy"],
        a["finished"],
    ) == ("runs/a.pt", "lenet5", "mnist", "nit", "pcm-joshi2020", 0.93, 1)
    assert json.loads(a["config"]) == meta and datetime.fromisoformat(a["created"]).utcoffset() == timedelta(0)
    b = runs["h2"]
    assert (b["model"], b["method"], b["clean_accuracy"], b["finished"], json.loads(b["config"])) == (
        None,
        None,
        None,
        1,
        {},
    )


def test_rows_of_an_unknown_table_are_refused(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    assert store.rows("runs") == [] and store.rows("evals") == []
    for name in ("sqlite_master", "evals; DROP TABLE runs", "Evals"):
        with pytest.raises(ValueError, match="unknown table"):
            store.rows(name)


def test_now_is_utc_to_the_second():
    stamp = datetime.fromisoformat(now_iso())
    assert stamp.utcoffset() == timedelta(0) and stamp.microsecond == 0 and "." not in now_iso()


# -- files that are not a current store ----------------------------------------------------------
def _database(path: Path, version: int, table: str = "CREATE TABLE evals (x)") -> Path:
    db = sqlite3.connect(path)
    if table:
        db.execute(table)
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()
    return path


def test_a_schema_2_store_is_upgraded_in_place_and_its_results_found_again(tmp_path):
    path = tmp_path / "v2.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs (model_hash TEXT PRIMARY KEY, checkpoint TEXT, model TEXT, dataset TEXT, method TEXT, "
        "profile TEXT, config TEXT, clean_accuracy REAL, finished INTEGER, created TEXT);"
        "CREATE TABLE evals (key TEXT PRIMARY KEY, accuracy REAL NOT NULL, model_hash TEXT NOT NULL, "
        "profile_hash TEXT NOT NULL, data_hash TEXT NOT NULL, calibration_hash TEXT NOT NULL, seed INTEGER NOT NULL, "
        "layer TEXT NOT NULL, batch_size INTEGER, device TEXT, engine_version INTEGER NOT NULL, noise_scale REAL, "
        "t_inference_s REAL, " + ", ".join(f"{c} TEXT" for c in LABELS) + ", created TEXT NOT NULL);"
        "PRAGMA user_version = 2;"
    )
    old = key(0)
    db.execute(
        "INSERT INTO evals (key, accuracy, model_hash, profile_hash, data_hash, calibration_hash, seed, layer, "
        "engine_version, created) VALUES (?, 0.75, ?, ?, ?, '', 0, '', ?, 'then')",
        (old.id, old.model, old.profile, old.data, old.engine_version),
    )
    db.commit()
    db.close()
    store = ResultsStore(path)
    assert store.get_eval(old) == 0.75, "a result of schema 2 keeps its key"
    recalibrated = replace(old, bn_recalibration="b" * 64)
    assert store.get_eval(recalibrated) is None
    store.put_eval(recalibrated, 0.8)
    rows = ResultsStore(path).rows("evals")
    assert [(r["accuracy"], r["bn_recalibration_hash"]) for r in rows] == [(0.75, ""), (0.8, "b" * 64)]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_stores_of_other_schema_versions_are_refused(tmp_path):
    for version in (0, 1):
        with pytest.raises(
            ResultsStoreError,
            match=rf"v{version}.sqlite: written by an older hwprofiles.*cannot be "
            rf"traced.*point --results \(or \$HWPROFILES_RESULTS\) at.*new file",
        ):
            ResultsStore(_database(tmp_path / f"v{version}.sqlite", version))
    newer = _database(tmp_path / "new.sqlite", SCHEMA_VERSION + 1)
    with pytest.raises(
        ResultsStoreError,
        match=rf"new.sqlite: written by a newer hwprofiles \(results schema "
        rf"{SCHEMA_VERSION + 1}, this one reads {SCHEMA_VERSION}\)",
    ):
        ResultsStore(newer)
    # an empty SQLite file, whatever its version number, becomes a store
    ResultsStore(_database(tmp_path / "empty.sqlite", 7, table="")).put_eval(key(), 0.5)
    assert ResultsStore(tmp_path / "empty.sqlite").get_eval(key()) == 0.5
    # a current store opens as it is
    ResultsStore(tmp_path / "empty.sqlite").put_eval(key(1), 0.25)
    assert len(ResultsStore(tmp_path / "empty.sqlite").rows("evals")) == 2


def test_a_path_that_cannot_hold_a_database_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ResultsStoreError, match=r"file/r.sqlite: cannot open the results database.*--results"):
        ResultsStore(tmp_path / "file" / "r.sqlite")
    (tmp_path / "folder.sqlite").mkdir()
    with pytest.raises(ResultsStoreError, match=r"folder.sqlite: .*--results"):
        ResultsStore(tmp_path / "folder.sqlite")
    (tmp_path / "text.sqlite").write_text("not a database, but long enough to have a first page" * 100)
    with pytest.raises(ResultsStoreError, match="text.sqlite: not a hwprofiles results database"):
        ResultsStore(tmp_path / "text.sqlite")


# -- a lock held by another process --------------------------------------------------------------
@pytest.fixture
def short_sqlite_wait(monkeypatch):
    """SQLite's own wait per attempt cut to 0.1 s, so the store's retries do the waiting."""
    monkeypatch.setattr(results, "_BUSY_TIMEOUT_S", 0.1)


def _hold_lock(path: Path, seconds: float) -> threading.Thread:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_write_retries_while_another_connection_holds_the_lock(tmp_path, short_sqlite_wait):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path, lock_budget_s=20.0)
    holder = _hold_lock(path, 0.6)
    store.put_eval(key(), 0.5)  # several 0.1 s attempts fail with "database is locked", then it gets through
    holder.join()
    store.record_run("a.pt", {}, 0.5, True, model_hash="h")
    assert ResultsStore(path).get_eval(key()) == 0.5 and len(store.rows("runs")) == 1


def test_opening_waits_for_the_lock_too(tmp_path, short_sqlite_wait):
    path = tmp_path / "r.sqlite"
    ResultsStore(path).close()
    holder = _hold_lock(path, 0.6)
    store = ResultsStore(path, lock_budget_s=20.0)
    holder.join()
    store.put_eval(key(), 0.5)
    assert store.get_eval(key()) == 0.5


def test_a_lock_held_past_the_budget_names_the_file_and_the_budget(tmp_path, short_sqlite_wait):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path, lock_budget_s=0.4)
    holder = _hold_lock(path, 1.2)
    try:
        with pytest.raises(
            ResultsStoreError,
            match=r"r.sqlite: the results database stayed locked by another "
            r"process for 0.4 s",
        ):
            store.put_eval(key(), 0.5)
    finally:
        holder.join()
    store.put_eval(key(), 0.5)  # the lock is gone: the store works again
    assert store.get_eval(key()) == 0.5


def test_other_database_failures_are_one_message_naming_the_file(tmp_path):
    path = tmp_path / "r.sqlite"
    store = ResultsStore(path)
    store._db.execute("DROP TABLE evals")  # a database damaged behind the store's back
    with pytest.raises(ResultsStoreError, match=r"r.sqlite: the results database cannot be used \(no such table"):
        store.get_eval(key())


# -- exports -----------------------------------------------------------------------------------
ROWS = [
    {"key": "k1", "accuracy": 0.5, "eval_profile": "a,b", "layer": ""},
    {"key": "k2", "accuracy": 0.25, "eval_profile": None, "layer": "fc"},
]


def test_csv_and_json_exports_hold_every_row_and_column():
    assert json.loads(export_rows(ROWS, "json")) == ROWS
    assert json.loads(export_rows(iter(ROWS), "json")) == ROWS  # any iterable of rows
    parsed = list(csv.DictReader(io.StringIO(export_rows(iter(ROWS), "csv"))))
    assert parsed == [
        {"key": "k1", "accuracy": "0.5", "eval_profile": "a,b", "layer": ""},
        {"key": "k2", "accuracy": "0.25", "eval_profile": "", "layer": "fc"},
    ]
    assert export_rows([], "csv") == "" and json.loads(export_rows([], "json")) == []
    assert export_rows(ROWS[:1], "csv").splitlines() == ["key,accuracy,eval_profile,layer", 'k1,0.5,"a,b",']
    with pytest.raises(ValueError, match="unknown format 'xlsx': use csv, json, parquet"):
        export_rows(ROWS, "xlsx")


def test_parquet_export_holds_every_row_or_says_what_is_missing(monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    assert pq.read_table(io.BytesIO(export_rows(iter(ROWS), "parquet"))).to_pylist() == ROWS
    import builtins

    real = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ResultsStoreError, match=r"pip install 'hwprofiles\[parquet\]'"):
        export_rows(ROWS, "parquet")


def test_a_stored_evaluation_exports_as_it_was_written(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put_eval(key(0), 0.75, {"eval_profile": "ideal"}, noise_scale=1.0, t_inference_s=1.0)
    store.put_eval(key(1), 0.5, {"eval_profile": "pcm"}, noise_scale=2.0, t_inference_s=60.0)
    exported = json.loads(export_rows(store.rows("evals"), "json"))
    assert [(r["seed"], r["accuracy"], r["eval_profile"], r["noise_scale"]) for r in exported] == [
        (0, 0.75, "ideal", 1.0),
        (1, 0.5, "pcm", 2.0),
    ]
