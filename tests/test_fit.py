"""Fitting profiles to measurements: recovery of known parameters, the written profile, bad CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import hwprofiles
from hwprofiles.errors import MeasurementError
from hwprofiles.fit import Measurements, fit_measurements, plot_fit, read_measurements

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

# The truth the synthetic measurements are drawn from: pcm-joshi2020's programming
# polynomial at g_max 25 uS, nu ~ N(0.05, 0.01), 1% of cells stuck at 0, 0.5% at g_max.
G_MAX = 25.0
COEFF = hwprofiles.load_profile("pcm-joshi2020").noise[0].coefficients_us
NU_MEAN, NU_STD = 0.05, 0.01
P_SA0, P_SA1 = 0.01, 0.005
T0 = 20.0


def sigma(x: np.ndarray) -> np.ndarray:
    return np.maximum(COEFF[0] + COEFF[1] * x + COEFF[2] * x * x, 0.0)


def draw_cells(n: int, rng: np.random.Generator, residuals: str = "normal") -> tuple[np.ndarray, ...]:
    """Targets uniform in [0, g_max]; programmed as the engine does (clamped at 0); stuck cells."""
    target = rng.uniform(0, G_MAX, n)
    unit = rng.standard_normal(n) if residuals == "normal" else rng.laplace(0, 1 / np.sqrt(2), n)  # std 1
    programmed = np.maximum(target + sigma(target / G_MAX) * unit, 0.0)
    u = rng.random(n)
    sa0, sa1 = u < P_SA0, (u >= P_SA0) & (u < P_SA0 + P_SA1)
    programmed[sa0] = 0.0
    programmed[sa1] = G_MAX
    return target, programmed, sa0, sa1


def synthetic(n: int = 40_000, seed: int = 0, residuals: str = "normal") -> Measurements:
    target, programmed, _, _ = draw_cells(n, np.random.default_rng(seed), residuals)
    return Measurements("synthetic.csv", target, programmed)


def synthetic_drift(
    devices: int = 3000,
    seed: int = 1,
    times: tuple[float, ...] = (1, 10, 100, 1e3, 1e4, 1e5),
    drawn: dict[str, float] | None = None,
) -> Measurements:
    """Each device read at several times: g(t) = g_prog ((t + t0)/t0)^-nu, 1% read noise per reading.

    ``drawn`` receives the mean and std of the nu actually drawn for the healthy devices.
    """
    rng = np.random.default_rng(seed)
    target, programmed, sa0, sa1 = draw_cells(devices, rng)
    stuck = sa0 | sa1
    nu = np.where(stuck, 0.0, rng.normal(NU_MEAN, NU_STD, devices))
    if drawn is not None:
        drawn.update(mean=float(nu[~stuck].mean()), std=float(nu[~stuck].std(ddof=1)))
    t = np.asarray(times, dtype=float)
    g = programmed[:, None] * ((t[None, :] + T0) / T0) ** (-nu[:, None])
    g *= 1 + 0.01 * rng.standard_normal(g.shape)
    ids = np.array([f"dev{i}" for i in range(devices)])
    return Measurements(
        "drift.csv", np.repeat(target, len(t)), np.maximum(g.ravel(), 0), np.tile(t, devices), np.repeat(ids, len(t))
    )


def write_csv(path: Path, m: Measurements, scale: float = 1.0, header_comment: str = "") -> Path:
    columns = (
        ["target", "measured"]
        + (["time_s"] if m.time_s is not None else [])
        + (["device"] if m.device is not None else [])
    )
    lines = [header_comment] if header_comment else []
    lines.append(",".join(columns))
    for i in range(len(m.target_us)):
        row = [f"{m.target_us[i] * scale:.9g}", f"{m.measured_us[i] * scale:.9g}"]
        if m.time_s is not None:
            row.append(f"{m.time_s[i]:g}")
        if m.device is not None:
            row.append(str(m.device[i]))
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- recovery


def test_programming_noise_and_stuck_cells_are_recovered_from_normal_residuals() -> None:
    target, programmed, sa0, sa1 = draw_cells(40_000, np.random.default_rng(0))
    result = fit_measurements(Measurements("synthetic.csv", target, programmed), g_max_us=G_MAX)
    c = result.coefficients
    # Tolerances for 40,000 cells in 20 bins: each coefficient within its 95% interval
    # and within 0.04 uS (c0), 0.2 uS (c1), 0.25 uS (c2) of the truth; s(x) within 3%
    # of the truth over x in [0.1, 1].
    for estimate, truth, tolerance in zip(c, COEFF, (0.04, 0.2, 0.25)):
        assert estimate.low <= truth <= estimate.high, (estimate, truth)
        assert abs(estimate.value - truth) <= tolerance, (estimate, truth)
    x = np.linspace(0.1, 1, 50)
    assert np.max(np.abs(result.sigma_us(x) / sigma(x) - 1)) < 0.03
    # Stuck cells: every one whose target is clearly off its rail is found, and no healthy
    # cell is taken for one; the fractions are within 3 binomial standard errors of the
    # nominal 1% and 0.5% (the draw itself varies that much).
    assert np.sum(sa0 & (target > 0.3 * G_MAX)) <= result.n_sa0 <= sa0.sum()
    assert np.sum(sa1 & (target < 0.6 * G_MAX)) <= result.n_sa1 <= sa1.sum()
    for estimate, truth, n in (
        (result.p_sa0, P_SA0, result.n_eligible_sa0),
        (result.p_sa1, P_SA1, result.n_eligible_sa1),
    ):
        assert abs(estimate.value - truth) < 3 * np.sqrt(truth * (1 - truth) / n)
        assert estimate.low < estimate.value < estimate.high < estimate.value + 0.003
    assert result.distribution == "normal"
    assert 0.5 < result.reduced_chi2 < 2.0


def test_laplace_residuals_are_recognised_and_the_noise_still_recovered() -> None:
    result = fit_measurements(synthetic(seed=3, residuals="laplace"), g_max_us=G_MAX)
    assert result.distribution == "laplace"
    bic = {d.name: d.bic for d in result.distributions}
    assert bic["laplace"] < bic["student-t"] < bic["normal"]
    for estimate, truth, tolerance in zip(result.coefficients, COEFF, (0.05, 0.25, 0.3)):
        assert estimate.low <= truth <= estimate.high and abs(estimate.value - truth) <= tolerance


def test_drift_exponent_mean_and_spread_are_recovered() -> None:
    drawn: dict[str, float] = {}
    result = fit_measurements(synthetic_drift(drawn=drawn), g_max_us=G_MAX)
    # 3000 devices, six readings each from 1 s to 1e5 s: mean and spread of nu within
    # 0.002 of the nominal 0.05 and 0.01, and their 95% intervals hold the mean and
    # spread of the nu actually drawn.
    assert result.nu_mean is not None and result.nu_std is not None
    for estimate, nominal, realised in (
        (result.nu_mean, NU_MEAN, drawn["mean"]),
        (result.nu_std, NU_STD, drawn["std"]),
    ):
        assert abs(estimate.value - nominal) < 0.002, (estimate, nominal)
        assert estimate.low <= realised <= estimate.high, (estimate, realised)
    assert result.n_drift_devices > 0.95 * 3000
    # The first readings, brought back to t = 0, still give the programming polynomial (3000 cells: looser).
    x = np.linspace(0.2, 1, 30)
    assert np.max(np.abs(result.sigma_us(x) / sigma(x) - 1)) < 0.08


def test_the_profile_holds_the_fitted_numbers_and_says_how_good_they_are() -> None:
    result = fit_measurements(synthetic_drift(), g_max_us=G_MAX)
    profile = result.to_profile("lab-pcm")
    assert profile.kinds() == ["pcm_programming", "pcm_drift", "stuck_at"]
    prog, drift, stuck = profile.noise
    assert prog.g_max_ref_us == G_MAX and profile.mapping.g_max_us == G_MAX
    assert prog.coefficients_us == pytest.approx([c.value for c in result.coefficients], rel=1e-5)
    assert drift.nu_mean == pytest.approx(result.nu_mean.value, rel=1e-5) and drift.t0_s == T0
    assert stuck.p_sa0 == pytest.approx(result.p_sa0.value, rel=1e-5)
    text = profile.description
    for phrase in ("95%", "c0 = ", "reduced chi^2", "lowest BIC", "KS p", "nu mean", "Clopper-Pearson", "SA1"):
        assert phrase in text, phrase
    assert hwprofiles.parse_profile(yaml.safe_load(hwprofiles.dump_profile(profile))) == profile


def test_no_stuck_cells_no_stuck_entry_and_no_times_no_drift() -> None:
    rng = np.random.default_rng(5)
    target = rng.uniform(0, G_MAX, 4000)
    measured = target + sigma(target / G_MAX) * rng.standard_normal(4000) + 0.0
    result = fit_measurements(Measurements("clean.csv", target, np.maximum(measured, 0)))
    assert result.g_max_us == pytest.approx(target.max()), "g_max defaults to the largest target"
    assert result.to_profile("clean").kinds() == ["pcm_programming"]


def test_discrete_target_levels_make_one_bin_each() -> None:
    rng = np.random.default_rng(7)
    levels = np.linspace(2.5, 25, 10)
    target = np.repeat(levels, 400)
    measured = target + sigma(target / G_MAX) * rng.standard_normal(len(target))
    result = fit_measurements(Measurements("levels.csv", target, measured), g_max_us=G_MAX)
    assert np.allclose(result.bin_x, levels / G_MAX) and list(result.bin_n) == [400] * 10


# --------------------------------------------------------------------------- command line and plot


def test_cli_fits_a_csv_in_nanosiemens_writes_the_profile_and_a_plot(cli, tmp_path: Path) -> None:
    m = synthetic_drift(devices=1200, times=(1, 100, 1e4, 1e5))
    csv = write_csv(tmp_path / "lab.csv", m, scale=1000.0, header_comment="# units: nS")
    out, png = tmp_path / "lab-pcm.yaml", tmp_path / "fit.png"
    result = cli("profiles", "fit", csv, "--name", "lab-pcm", "--g-max-us", "25", "--out", out, "--plot", png)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "programming noise s(x) = c0 + c1 x + c2 x^2 uS (95% CI), g_max 25 uS:"
    assert lines[1].startswith("  c0 = ") and "[" in lines[1]
    assert any(line.startswith("drift nu: mean 0.0") for line in lines)
    assert lines[-1] == f"wrote: {out}"
    profile = hwprofiles.load_profile(out)
    assert profile.name == "lab-pcm" and profile.kinds() == ["pcm_programming", "pcm_drift", "stuck_at"]
    assert abs(profile.noise[1].nu_mean - NU_MEAN) < 0.003
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = cli("profiles", "fit", csv, "--name", "lab-pcm", "--out", out)
    assert again.exit_code == 2 and "exists; pass --force" in again.stderr


def test_cli_fit_goes_into_the_user_directory_by_default(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(tmp_path / "user"))
    csv = write_csv(tmp_path / "cells.csv", synthetic(n=3000, seed=2), scale=1e-6)
    result = cli("profiles", "fit", csv, "--name", "lab-cells", "--units", "S", "--g-max-us", "25")
    assert result.exit_code == 0, result.output
    assert hwprofiles.load_profile("lab-cells").mapping.g_max_us == 25.0
    assert (tmp_path / "user" / "lab-cells.yaml").is_file()
    taken = cli("profiles", "fit", csv, "--name", "pcm-joshi2020", "--units", "S")
    assert taken.exit_code == 2 and "already in the profile library" in taken.stderr


def test_plot_fit_draws_both_panels(tmp_path: Path) -> None:
    result = fit_measurements(synthetic(n=4000, seed=4, residuals="laplace"), g_max_us=G_MAX)
    path = plot_fit(result, tmp_path / "deep" / "fit.png")
    assert path.stat().st_size > 20_000
    assert [p.name for p in path.parent.iterdir()] == ["fit.png"], "written atomically, nothing left beside it"


# --------------------------------------------------------------------------- bad input


GOOD_ROWS = "".join(f"{t},{t * 1.01}\n" for t in np.linspace(1, 25, 200))


@pytest.mark.parametrize(
    "text,args,expected",
    [
        ("", (), ["the file is empty", "Expected a header line 'target,measured'"]),
        ("# units: uS\n\n", (), ["the file is empty"]),
        ("target,measured\n", (), ["no measurements: the header (line 1) is followed by no rows"]),
        ("target,value\n1,2\n", (), ["line 1: missing column(s) 'measured'", "found 'target', 'value'"]),
        (
            "target,measured\n1,2\n3,abc\n4,-5\n",
            (),
            [
                "2 bad value(s)",
                "line 3, column 'measured': 'abc' is not a number",
                "line 4, column 'measured': -5 is negative, but a conductance cannot be",
            ],
        ),
        ("target,measured\n1,nan\n", (), ["line 2, column 'measured': 'nan' is not a finite number"]),
        ("target,measured\n1,2,3\n", (), ["line 2: 3 values, but the header has 2 columns"]),
        ("target,measured,time_s\n1,2,10\n", (), ["a time_s column needs a device column too"]),
        ("# units: kS\ntarget,measured\n1,2\n", (), ["unknown units 'kS'; use uS, nS or S"]),
        (
            "# units: nS\n" + "target,measured\n" + GOOD_ROWS,
            ("--units", "uS"),
            ["the file says '# units: nS' but units uS were asked for"],
        ),
        (
            "target,measured\n" + GOOD_ROWS,
            (),
            [
                "too few measurements per bin",
                "hold fewer than 30",
                "the fewest: 10 at",
                "200 measurements in all",
                "Add measurements",
            ],
        ),
        (
            "target,measured\n" + "".join(f"{t},{t}\n" for t in [5, 10] * 50),
            (),
            ["only 2 target level(s)", "needs at least 4"],
        ),
        ("target,measured\n" + GOOD_ROWS, ("--g-max-us", "10"), ["exceed g_max = 10 uS"]),
    ],
    ids=[
        "empty",
        "comments-only",
        "header-only",
        "missing-column",
        "bad-values",
        "nan",
        "ragged",
        "time-without-device",
        "unknown-units",
        "conflicting-units",
        "too-few-per-bin",
        "too-few-levels",
        "target-above-g-max",
    ],
)
def test_bad_csvs_get_one_clear_message(
    cli, tmp_path: Path, text: str, args: tuple[str, ...], expected: list[str]
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(text)
    result = cli("profiles", "fit", csv, "--name", "x", "--out", tmp_path / "x.yaml", *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {csv}"), result.stderr
    flat = " ".join(result.stderr.split())
    for phrase in expected:
        assert phrase in flat, (phrase, result.stderr)
    assert "Traceback" not in result.stderr and not (tmp_path / "x.yaml").exists()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MeasurementError, match="nowhere.csv: no such file"):
        read_measurements(tmp_path / "nowhere.csv")


def test_units_are_converted_to_microsiemens(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("# units: nS\ntarget,measured,device\n12000,11500,a\n")
    m = read_measurements(path)
    assert (m.target_us[0], m.measured_us[0], m.device[0]) == (12.0, 11.5, "a")
    assert read_measurements(path, units="nS").target_us[0] == 12.0
