"""Draw the README's figure from committed results: LeNet-5 of the seed study at the ``small``
budget (docs/results/study-small/study.json), clean vs QAT vs NIT under additive Gaussian
noise, with the plotting code the demo and the study use (hwprofiles.eval.plots.plot_curves).

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
STUDY = HERE.parent / "results" / "study-small" / "study.json"
OUT = HERE / "nit-vs-qat-lenet5.png"
WIDTH = 640  # pixels: small enough for the README's first screen


def main() -> None:
    study = json.loads(STUDY.read_text(encoding="utf-8"))
    lenet = study["architectures"]["lenet5"]
    nit = lenet["nit_at_qat_midpoint"]  # the NIT model trained at QAT's midpoint sigma
    shown = {"clean": "clean", lenet["best_qat"]: "QAT 8-bit (best scale)", nit: f"NIT ({nit[4:]})"}
    curves = {
        label: [(p["sigma"], Summary(p["mean"], p["std"], p["ci_low"], p["ci_high"], p["n"])) for p in m["curve"]]
        for key, label in shown.items()
        for m in [lenet["models"][key]]
    }
    midpoints = {label: lenet["midpoints"][key] for key, label in shown.items()}
    budget = study["budget"]
    with tempfile.TemporaryDirectory() as tmp:
        drawn = plot_curves(
            curves,
            Path(tmp) / "figure.png",
            xlabel="sigma of additive Gaussian noise on the input and every layer output",
            title=f"LeNet-5, Fashion-MNIST: accuracy over {budget['samples']} chip instances (dotted: midpoints)",
            chance=0.1,
            midpoints=midpoints,
        )
        image = Image.open(drawn).convert("RGB")
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.Resampling.LANCZOS)
        image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(OUT, optimize=True)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
