"""The results store: every training run and every evaluated chip instance, in SQLite.

An evaluated chip instance is stored under its content key
(:class:`hwprofiles.eval.keys.EvalKey`): hashes of the weights, the profile as it
acted, the test and calibration data, plus the chip seed, the noisy layer and the
engine version. Re-running a sweep or a transfer skips what is already measured, an
interrupted run resumes where it stopped, and a changed checkpoint or profile is
measured afresh. Paths and names are stored beside each number as labels, so an
exported row says what it is.

    >>> from hwprofiles.eval.keys import EvalKey
    >>> store = ResultsStore(":memory:")
    >>> key = EvalKey(model="m" * 64, profile="p" * 64, data="d" * 64, calibration="", seed=0)
    >>> store.get_eval(key) is None
    True
    >>> store.put_eval(key, 0.75, {"eval_profile": "ideal"})
    >>> store.get_eval(key)
    0.75
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hwprofiles.errors import ResultsStoreError

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.keys import EvalKey

DB_ENV = "HWPROFILES_RESULTS"
DEFAULT_DB = Path("hwprofiles-out") / "results.sqlite"
SCHEMA_VERSION = 3  # PRAGMA user_version; 0 is the name-keyed store of hwprofiles 0.1
# Columns added since schema 2, each with what a row stored before means: a schema-2 file is
# upgraded in place by adding them (its keys stay valid, see EvalKey.id).
_ADDED_COLUMNS = {3: ("bn_recalibration_hash", "TEXT NOT NULL DEFAULT ''")}
LOCK_BUDGET_S = 120.0  # how long to wait for another process's lock before giving up
_BUSY_TIMEOUT_S = 5.0  # SQLite's own wait per attempt, inside that budget
_WHERE_TO = "Check that its folder is writable and the disk is not full, or point --results at another file."
T = TypeVar("T")

# Label columns: what a person reads; never part of the key.
LABELS = ("checkpoint", "model", "method", "train_profile", "eval_profile", "test_set")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    model_hash TEXT PRIMARY KEY,
    checkpoint TEXT, model TEXT, dataset TEXT, method TEXT, profile TEXT,
    config TEXT, clean_accuracy REAL, finished INTEGER, created TEXT
);
CREATE TABLE IF NOT EXISTS evals (
    key TEXT PRIMARY KEY,
    accuracy REAL NOT NULL,
    model_hash TEXT NOT NULL, profile_hash TEXT NOT NULL, data_hash TEXT NOT NULL,
    calibration_hash TEXT NOT NULL, seed INTEGER NOT NULL, layer TEXT NOT NULL,
    batch_size INTEGER, device TEXT, engine_version INTEGER NOT NULL,
    bn_recalibration_hash TEXT NOT NULL DEFAULT '',
    noise_scale REAL, t_inference_s REAL,
    {", ".join(f"{c} TEXT" for c in LABELS)},
    created TEXT NOT NULL
);
PRAGMA user_version = {SCHEMA_VERSION};
"""


def default_db_path() -> Path:
    """``$HWPROFILES_RESULTS``, else ``hwprofiles-out/results.sqlite``."""
    return Path(os.environ.get(DB_ENV, DEFAULT_DB))


def now_iso() -> str:
    """The current time in UTC, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """A SQLite database of runs and evaluations, keyed by content.

    Many processes may share one database: it runs in write-ahead-log mode (readers
    never block the writer), and a write that finds the database locked retries
    with back-off for up to ``lock_budget_s`` seconds before giving up with a message.

    Args:
        path: the database file (default ``$HWPROFILES_RESULTS`` or
            ``hwprofiles-out/results.sqlite``), or ``":memory:"``.
        lock_budget_s: how long a read or write may wait for a lock held by another process.

    Raises:
        ResultsStoreError: the file is not a SQLite database, it is a name-keyed
            store of an older version (its numbers cannot be traced, so they are never
            mixed with new ones: point at a new file), or it cannot be opened or written.
    """

    def __init__(self, path: str | Path | None = None, *, lock_budget_s: float = LOCK_BUDGET_S) -> None:
        memory = path is not None and str(path) == ":memory:"
        self.path: Path | str = ":memory:" if memory else Path(path if path is not None else default_db_path())
        self.lock_budget_s = lock_budget_s
        try:
            if isinstance(self.path, Path):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=min(_BUSY_TIMEOUT_S, lock_budget_s))
        except (OSError, sqlite3.Error) as exc:
            raise ResultsStoreError(f"{self.path}: cannot open the results database ({exc}). {_WHERE_TO}") from None
        try:
            self._retrying(self._open)
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        self._check_version()
        if isinstance(self.path, Path):
            self._db.execute("PRAGMA journal_mode=WAL")  # readers and one writer at once, across processes
        self._db.executescript(_SCHEMA)

    def _retrying(self, action: Callable[[], T]) -> T:
        """Run ``action``, retrying with back-off while another process holds the lock;
        every other database failure becomes one message naming the file."""
        deadline = time.monotonic() + self.lock_budget_s
        delay = 0.05
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "locked" in text or "busy" in text:
                    if time.monotonic() + delay > deadline:
                        raise ResultsStoreError(
                            f"{self.path}: the results database stayed locked by another process for "
                            f"{self.lock_budget_s:g} s. Wait for that process, or point --results at another file."
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                raise ResultsStoreError(
                    f"{self.path}: the results database cannot be used ({text}). {_WHERE_TO}"
                ) from None
            except sqlite3.DatabaseError as exc:
                raise ResultsStoreError(
                    f"{self.path}: not a hwprofiles results database ({exc}). Point --results at another file."
                ) from None

    def _check_version(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables or version == SCHEMA_VERSION:
            return
        if 2 <= version < SCHEMA_VERSION:
            self._upgrade(version)
            return
        if version < SCHEMA_VERSION:
            raise ResultsStoreError(
                f"{self.path}: written by an older hwprofiles that keyed results by file and profile names, "
                "so its numbers cannot be traced to the weights and profiles that made them. They are not mixed "
                "with new results: keep the file for reference and point --results (or $HWPROFILES_RESULTS) at "
                "a new file, or delete it to measure afresh."
            )
        raise ResultsStoreError(
            f"{self.path}: written by a newer hwprofiles (results schema {version}, this one reads "
            f"{SCHEMA_VERSION}). Upgrade hwprofiles or use another file."
        )

    def _upgrade(self, version: int) -> None:
        """Add the columns of later schemas to a store of schema ``version`` (>= 2), in one transaction."""

        def upgrade() -> None:
            with self._db:
                for added in range(version + 1, SCHEMA_VERSION + 1):
                    column, declaration = _ADDED_COLUMNS[added]
                    self._db.execute(f"ALTER TABLE evals ADD COLUMN {column} {declaration}")
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

        self._retrying(upgrade)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    # -- runs ------------------------------------------------------------------------
    def record_run(
        self, checkpoint: str, meta: dict[str, Any], clean_accuracy: float | None, finished: bool, *, model_hash: str
    ) -> None:
        """Record a training run under the hash of the model it produced."""
        config = meta.get("config", {})
        values = (
            model_hash,
            str(checkpoint),
            config.get("model"),
            config.get("dataset"),
            config.get("method"),
            config.get("profile"),
            json.dumps(meta, sort_keys=True),
            clean_accuracy,
            int(finished),
            now_iso(),
        )
        self._write("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def _write(self, sql: str, values: tuple[Any, ...]) -> None:
        def write() -> None:
            with self._db:  # one transaction: committed whole or rolled back
                self._db.execute(sql, values)

        self._retrying(write)

    # -- evaluations -----------------------------------------------------------------
    def get_eval(self, key: EvalKey) -> float | None:
        """The accuracy stored under ``key``, or None."""
        row = self._retrying(lambda: self._db.execute("SELECT accuracy FROM evals WHERE key=?", (key.id,)).fetchone())
        return None if row is None else float(row[0])

    def put_eval(
        self,
        key: EvalKey,
        accuracy: float,
        labels: dict[str, Any] | None = None,
        *,
        noise_scale: float | None = None,
        t_inference_s: float | None = None,
    ) -> None:
        """Store one chip instance's accuracy; ``labels`` fill the columns of :data:`LABELS`."""
        labels = labels or {}
        unknown = set(labels) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown label columns {sorted(unknown)}; use {', '.join(LABELS)}")
        row = {
            "key": key.id,
            "accuracy": float(accuracy),
            "model_hash": key.model,
            "profile_hash": key.profile,
            "data_hash": key.data,
            "calibration_hash": key.calibration,
            "seed": key.seed,
            "layer": key.layer,
            "batch_size": key.batch_size,
            "device": key.device,
            "engine_version": key.engine_version,
            "bn_recalibration_hash": key.bn_recalibration,
            "noise_scale": noise_scale,
            "t_inference_s": t_inference_s,
            **{c: None if labels.get(c) is None else str(labels[c]) for c in LABELS},
            "created": now_iso(),
        }
        # one transaction per chip instance: an interrupt loses at most the one being measured
        self._write(
            f"INSERT OR REPLACE INTO evals ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` (evals or runs) as a dict, in the order written."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")

        def read() -> list[dict[str, Any]]:
            cursor = self._db.execute(f"SELECT * FROM {table} ORDER BY rowid")  # noqa: S608 - fixed names
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

        return self._retrying(read)


EXPORT_FORMATS = ("csv", "json", "parquet")
TABLES = ("evals", "runs")


def export_results(path: str | Path | None, table: str = "evals", fmt: str = "csv") -> str | bytes:
    """Every row of ``table`` (evals or runs) of the results database at ``path`` (default
    :func:`default_db_path`), one self-describing row each, as ``fmt`` (see :func:`export_rows`).

    Raises:
        ResultsStoreError: there is no database at ``path`` (an export never creates one).
    """
    path = Path(path) if path is not None else default_db_path()
    if not path.is_file():  # exporting must never create an empty database at a mistyped path
        raise ResultsStoreError(
            f"{path}: no such results database. Give the file your runs wrote with --results; "
            "train, eval, sweep, transfer and study make one there (--results PATH)."
        )
    store = ResultsStore(path)
    try:
        return export_rows(store.rows(table), fmt)
    finally:
        store.close()


def export_rows(rows: Iterable[dict[str, Any]], fmt: str) -> str | bytes:
    """Rows as CSV or JSON text, or Parquet bytes (needs pyarrow)."""
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
    if fmt == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ResultsStoreError("Parquet export needs pyarrow: pip install 'hwprofiles[parquet]'") from None
        import io

        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), sink)
        return sink.getvalue()
    raise ValueError(f"unknown format {fmt!r}: use {', '.join(EXPORT_FORMATS)}")
