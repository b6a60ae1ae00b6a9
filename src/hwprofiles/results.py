"""The results store: every training run and every evaluated chip instance, in SQLite.

One row per (checkpoint, evaluation profile, noise scale, inference time, test set,
chip seed), so re-running a sweep or a transfer skips what is already measured
and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

DB_ENV = "HWPROFILES_RESULTS"
DEFAULT_DB = Path("hwprofiles-out") / "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    checkpoint TEXT PRIMARY KEY,
    model TEXT, dataset TEXT, method TEXT, profile TEXT,
    config TEXT, clean_accuracy REAL, finished INTEGER, created REAL
);
CREATE TABLE IF NOT EXISTS evals (
    checkpoint TEXT, eval_profile TEXT, noise_scale REAL, t_inference_s REAL,
    test_set TEXT, seed INTEGER, layer TEXT, accuracy REAL, created REAL,
    PRIMARY KEY (checkpoint, eval_profile, noise_scale, t_inference_s, test_set, seed, layer)
);
"""


def default_db_path() -> Path:
    return Path(os.environ.get(DB_ENV, DEFAULT_DB))


@dataclass(frozen=True)
class EvalKey:
    """What identifies one evaluated chip instance."""

    checkpoint: str
    eval_profile: str
    noise_scale: float
    t_inference_s: float
    test_set: str
    seed: int
    layer: str = ""  # per-layer sensitivity: the only noisy layer; "" for all


class ResultsStore:
    """A SQLite database of runs and evaluations.

    >>> store = ResultsStore(":memory:")
    >>> store.get_eval(EvalKey("a.pt", "ideal", 1.0, 1.0, "fashion-mnist/test", 0)) is None
    True
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None and str(path) != ":memory:" else path
        if self.path is None:
            self.path = default_db_path()
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path))
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- runs ------------------------------------------------------------------------
    def record_run(self, checkpoint: str, meta: dict[str, Any], clean_accuracy: float | None, finished: bool) -> None:
        config = meta.get("config", {})
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(checkpoint), config.get("model"), config.get("dataset"), config.get("method"),
                    config.get("profile"), json.dumps(meta, sort_keys=True), clean_accuracy, int(finished), time.time(),
                ),
            )

    # -- evaluations -----------------------------------------------------------------
    def get_eval(self, key: EvalKey) -> float | None:
        row = self._db.execute(
            "SELECT accuracy FROM evals WHERE checkpoint=? AND eval_profile=? AND noise_scale=? AND "
            "t_inference_s=? AND test_set=? AND seed=? AND layer=?",
            (key.checkpoint, key.eval_profile, key.noise_scale, key.t_inference_s, key.test_set, key.seed, key.layer),
        ).fetchone()
        return None if row is None else float(row[0])

    def put_eval(self, key: EvalKey, accuracy: float) -> None:
        with self._db:  # one transaction per chip instance: an interrupt loses at most one
            self._db.execute(
                "INSERT OR REPLACE INTO evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.checkpoint, key.eval_profile, key.noise_scale, key.t_inference_s, key.test_set, key.seed,
                 key.layer, float(accuracy), time.time()),
            )

    def rows(self, table: str) -> list[dict[str, Any]]:
        if table not in ("runs", "evals"):
            raise ValueError(f"unknown table {table!r}")
        cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY rowid")  # noqa: S608 - fixed names
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def export_rows(rows: Iterable[dict[str, Any]], fmt: str) -> str:
    """Rows as CSV or JSON text."""
    rows = list(rows)
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        import csv
        import io

        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return buffer.getvalue()
    raise ValueError(f"unknown format {fmt!r}: use csv or json")
