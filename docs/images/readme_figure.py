"""Draw the README's figure from committed results: LeNet-5 of the seed study at the ``medium``
budget (docs/results/study-medium/study.json: 3 training seeds), clean vs QAT vs NIT under
additive Gaussian noise, each curve the mean over the training seeds with its 95% interval
over them, with the plotting code the demo and the study use (hwprofiles.eval.plots.plot_curves).

    python docs/images/readme_figure.py   # writes docs/images/nit-vs-qat-lenet5.png
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from PIL import Image

from hwprofiles.eval.plots import plot_curves
from hwprofiles.eval.summary import Summary

HERE = Path(__file__).resolve().parent
STUDY = HERE.parent / "results" / "study-medium" / "study.json"
OUT = HERE / "nit-vs-qat-lenet5.png"
WIDTH = 640  # pixels: small enough for the README's first screen


def main() -> None:
    study = json.loads(STUDY.read_text(encoding="utf-8"))
    lenet = study["architectures"]["lenet5"]
    agg = lenet["over_seeds"]  # per model: the curve and midpoint over the training seeds
    qat = lenet["best_qat"]
    shown = {
        "clean": "clean",
        qat: f"QAT 8-bit, constant step {qat.split('=')[1]}",
        "nit sigma=1": "NIT at sigma 1",
        "nit at QAT midpoint": "NIT at QAT's midpoint",
    }
    curves = {
        label: [
            (p["sigma"], Summary(p["mean"], p["std"], max(0.0, p["ci_low"]), min(1.0, p["ci_high"]), p["n"]))
            for p in agg[key]["curve"]
        ]
        for key, label in shown.items()
    }
    midpoints = {label: agg[key]["midpoint_sigma"]["mean"] for key, label in shown.items()}
    budget = study["budget"]
    with tempfile.TemporaryDirectory() as tmp:
        drawn = plot_curves(
            curves,
            Path(tmp) / "figure.png",
            xlabel="sigma of additive Gaussian noise on the input and every layer output",
            title=f"LeNet-5, Fashion-MNIST: {len(budget['seeds'])} training seeds x {budget['samples']} chips",
            chance=0.1,
            midpoints=midpoints,
            ylabel="test accuracy (mean over seeds, 95% interval)",
        )
        image = Image.open(drawn).convert("RGB")
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.Resampling.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
