"""Write a device profile from measured conductances (``hwprofiles profiles fit``).

What it shows: a CSV of measurements (the conductance each device was programmed to,
what was read, and when) becomes a validated profile with programming noise, drift and
stuck cells fitted with 95% intervals; the profile is then loaded and used like a shipped
one. Without --csv the script writes such a file itself, drawn (seeded) from a known PCM
device, so the fit can be checked against the truth it prints.

With your own measurements (columns target, measured[, time_s, device]; units uS unless a
``# units: nS`` line or --units says otherwise)::

    python examples/03_fit_profile_from_measurements.py --csv lab.csv --g-max-us 25 --out runs/fit

which runs ``hwprofiles profiles fit lab.csv --name lab-pcm --g-max-us 25 --out
runs/fit/lab-pcm.yaml --plot runs/fit/lab-pcm-fit.png``. In seconds, on a small drawn
data set (what the tests run)::

    python examples/03_fit_profile_from_measurements.py --tiny --out /tmp/fit

It writes OUT/lab-pcm.yaml (and the diagnostic plot beside it).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import numpy as np

import hwprofiles
from hwprofiles.cli import main as hwprofiles_cli

G_MAX_US = 25.0
TRUE_COEFFICIENTS = (0.26, 1.97, -1.17)  # std of programming noise in uS: c0 + c1 x + c2 x^2
TRUE_NU = (0.05, 0.01)  # drift exponent: mean and spread over devices
TIMES_S = (1.0, 3600.0, 86400.0)


def draw_measurements(path: Path, devices_per_level: int, seed: int = 0) -> None:
    """A CSV as a lab would write it: every device read at each time after programming."""
    rng = np.random.default_rng(seed)
    levels = np.linspace(0.1, 1.0, 10) * G_MAX_US
    with path.open("w", newline="") as f:
        f.write("# units: uS\n")
        writer = csv.writer(f)
        writer.writerow(["target", "measured", "time_s", "device"])
        for level_index, target in enumerate(levels):
            x = target / G_MAX_US
            sigma = np.polyval(TRUE_COEFFICIENTS[::-1], x)
            for d in range(devices_per_level):
                g0 = max(target + rng.normal(0.0, sigma), 0.0)
                nu = abs(rng.normal(*TRUE_NU))
                for t in TIMES_S:
                    g = g0 * ((t + 20.0) / 20.0) ** -nu  # t0 = 20 s, the fit's default
                    writer.writerow([f"{target:.4f}", f"{g:.4f}", t, f"L{level_index}D{d}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("HWPROFILES_EXAMPLES_TINY")))
    parser.add_argument("--csv", type=Path, help="Your measurements (default: draw them here).")
    parser.add_argument("--g-max-us", type=float, default=G_MAX_US)
    parser.add_argument("--name", default="lab-pcm")
    parser.add_argument("--out", type=Path, default=Path("examples-out/03"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if args.csv is None:
        args.csv = args.out / "measurements.csv"
        draw_measurements(args.csv, devices_per_level=60 if args.tiny else 400)
        print(f"drew {args.csv}: programming noise {TRUE_COEFFICIENTS} uS, nu {TRUE_NU}")

    profile_path = args.out / f"{args.name}.yaml"
    command = ["profiles", "fit", str(args.csv), "--name", args.name, "--g-max-us", str(args.g_max_us)]
    command += ["--out", str(profile_path), "--plot", str(args.out / f"{args.name}-fit.png"), "--force"]
    print("hwprofiles", " ".join(command))
    code = hwprofiles_cli(command)
    if code != 0:
        raise SystemExit(code)

    profile = hwprofiles.load_profile(profile_path)  # validated, usable like any shipped profile
    print(f"\n{profile.name}: {', '.join(profile.kinds())}")
    for entry in profile.noise:
        print(f"  {entry.kind}: {entry.model_dump(exclude_defaults=True, exclude={'note'})}")


if __name__ == "__main__":
    main()
