"""Measurement CSV files: one row per reading of a device's conductance."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwprofiles.errors import MeasurementError

UNITS_TO_US = {"us": 1.0, "µs": 1.0, "μs": 1.0, "s": 1e6, "ms": 1e3, "ns": 1e-3}
REQUIRED_COLUMNS = ("target", "measured")
OPTIONAL_COLUMNS = ("time_s", "device")
_NUMERIC_COLUMNS = ("target", "measured", "time_s")
_MAX_ERRORS = 10  # bad values listed in one message; the rest are counted
_HOW = "Expected a header line 'target,measured' (optionally also time_s and device), then one row per measurement."


@dataclass
class Measurements:
    """Conductance measurements, in uS.

    Attributes:
        source: the file they were read from (for messages).
        target_us: programmed target conductance of each row.
        measured_us: measured conductance of each row.
        time_s: time since programming of each row, or ``None``.
        device: device id of each row (strings), or ``None``.
    """

    source: str
    target_us: np.ndarray
    measured_us: np.ndarray
    time_s: np.ndarray | None = None
    device: np.ndarray | None = None


def read_measurements(path: str | Path, units: str | None = None) -> Measurements:
    """Read a measurement CSV (see :mod:`hwprofiles.fit`), converting to uS.

    Args:
        path: the CSV file.
        units: uS, nS or S; default the file's ``# units:`` line, else uS.

    Raises:
        MeasurementError: the file is missing, empty or malformed; the message names the
            file, the line and column, and how to fix it.

    >>> m = read_measurements("measurements.csv", units="nS")  # doctest: +SKIP
    """
    path = Path(path)
    lines, file_units = _data_lines(_read_text(path))
    if not lines:
        raise MeasurementError(f"{path}: the file is empty (no header, no measurements). {_HOW}")
    factor = _units(path, units, file_units)
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header_line = lines[0][0]
    header = _header(path, rows[0], header_line)
    if len(rows) == 1:
        raise MeasurementError(f"{path}: no measurements: the header (line {header_line}) is followed by no rows")
    values, devices = _values(path, header, rows[1:], [number for number, _ in lines[1:]])
    return Measurements(
        source=str(path),
        target_us=values["target"] * factor,
        measured_us=values["measured"] * factor,
        time_s=values.get("time_s"),
        device=np.asarray(devices) if "device" in header else None,
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MeasurementError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasurementError(f"{path}: cannot be read: {exc}") from None


def _data_lines(text: str) -> tuple[list[tuple[int, str]], str | None]:
    """The non-blank, non-comment lines with their line numbers, and the units a ``# units:`` line gives."""
    file_units: str | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = re.match(r"#\s*units?\s*[:=]\s*(\S+)", stripped, re.IGNORECASE)
            if match:
                file_units = match.group(1)
            continue
        lines.append((number, line))
    return lines, file_units


def _units_factor(units: str, where: str) -> float:
    factor = UNITS_TO_US.get(units.strip().lower().replace("siemens", "s"))
    if factor is None:
        raise MeasurementError(f"{where}: unknown units '{units}'; use uS, nS or S")
    return factor


def _units(path: Path, units: str | None, file_units: str | None) -> float:
    """The factor to uS: of ``units`` if given, else of the file's ``# units:`` line, else 1."""
    if units and file_units and _units_factor(units, str(path)) != _units_factor(file_units, str(path)):
        raise MeasurementError(
            f"{path}: the file says '# units: {file_units}' but units {units} were asked for; drop one of them"
        )
    return _units_factor(units or file_units or "uS", f"{path}" if units else f"{path}: '# units:' line")


def _header(path: Path, row: list[str], line: int) -> list[str]:
    """The column names of the header row, checked."""
    header = [h.strip().lower() for h in row]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise MeasurementError(
            f"{path}: line {line}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(h) for h in header) or 'none'}. {_HOW}"
        )
    duplicated = sorted({h for h in header if header.count(h) > 1 and h in REQUIRED_COLUMNS + OPTIONAL_COLUMNS})
    if duplicated:
        raise MeasurementError(f"{path}: line {line}: column(s) {', '.join(duplicated)} appear twice")
    return header


def _values(
    path: Path, header: list[str], rows: list[list[str]], line_numbers: list[int]
) -> tuple[dict[str, np.ndarray], list[str]]:
    """The numeric columns as arrays and the device ids, or every bad value in one error."""
    width = len(header)
    index = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
    numeric = [c for c in _NUMERIC_COLUMNS if c in index]
    values = {c: np.empty(len(rows)) for c in numeric}
    devices: list[str] = []
    errors: list[str] = []
    for i, (row, line) in enumerate(zip(rows, line_numbers)):
        if len(row) != width:
            errors.append(f"line {line}: {len(row)} values, but the header has {width} columns")
            continue
        for column in numeric:
            values[column][i] = _number(row[index[column]].strip(), column, line, errors)
        if "device" in index:
            device = row[index["device"]].strip()
            if not device:
                errors.append(f"line {line}, column 'device': empty; give every row its device id")
            devices.append(device)
    if errors:
        more = f"\n... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise MeasurementError(
            f"{path}: {len(errors)} bad value(s); conductances and times must be plain non-negative numbers "
            "(e.g. 12.5), in the file's units:\n" + "\n".join(f"{path}: {e}" for e in errors[:_MAX_ERRORS]) + more
        )
    return values, devices


def _number(cell: str, column: str, line: int, errors: list[str]) -> float:
    """The cell as a number; a problem is added to ``errors`` (the value is then of no use)."""
    try:
        value = float(cell)
    except ValueError:
        errors.append(f"line {line}, column '{column}': {cell!r} is not a number")
        return math.nan
    if not math.isfinite(value):
        errors.append(f"line {line}, column '{column}': {cell!r} is not a finite number")
    elif value < 0:
        what = "a time since programming" if column == "time_s" else "a conductance"
        errors.append(f"line {line}, column '{column}': {cell} is negative, but {what} cannot be")
    return value
