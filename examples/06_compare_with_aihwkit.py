"""Compare with IBM's aihwkit through the bridge: one device description, two simulators.

What it shows:

1. export: a shipped profile written as aihwkit ``InferenceRPUConfig`` settings
   (``hwprofiles.aihwkit_bridge.to_aihwkit``), the JSON an aihwkit user can build from;
2. import: aihwkit settings (a PCM tile as aihwkit's hardware-aware training preset
   describes it) read into a profile (``from_aihwkit``), with the notes on every field
   that does not translate one to one;
3. the same trained LeNet-5 evaluated under the imported profile by hwprofiles over K
   chips, and, when aihwkit is installed, by aihwkit itself under the same settings, one
   hour after programming.

aihwkit is not needed for steps 1 and 2 and for hwprofiles' side of 3; without it the
script says so and skips aihwkit's side. Run it on Fashion-MNIST (--data-root, or the
Debian package dataset-fashion-mnist at /usr/share/datasets/fashion-mnist)::

    python examples/06_compare_with_aihwkit.py --samples 10 --out runs/aihwkit

In seconds, on tiny synthetic data (what the tests run)::

    python examples/06_compare_with_aihwkit.py --tiny --out /tmp/aihwkit

It writes OUT/pcm-joshi2020.aihwkit.json, OUT/rpu_config.json, OUT/lab-pcm-aihwkit.yaml
and OUT/results.json. The field-by-field rules are in docs/aihwkit-bridge.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import hwprofiles
from hwprofiles.aihwkit_bridge import from_aihwkit, to_aihwkit
from hwprofiles.data import make_loaders

ONE_HOUR_S = 3600.0

# aihwkit's InferenceRPUConfig for a PCM tile, written out as the bridge reads it: the
# periphery of the hardware-aware training preset, weights mapped per output channel,
# its PCM statistics and global drift compensation.
RPU_CONFIG: dict[str, Any] = {
    "type": "InferenceRPUConfig",
    "forward": {
        "inp_res": 1 / 254,  # 8-bit DAC
        "out_res": 1 / 254,  # 8-bit ADC
        "out_bound": 10.0,
        "out_noise": 0.04,
        "w_noise_type": "ADDITIVE_CONSTANT",
        "w_noise": 0.0175,
        "bound_management": "NONE",  # outputs clip at out_bound, as the profile's ADC does
    },
    "mapping": {
        "max_input_size": 512,
        "max_output_size": 512,
        "weight_scaling_omega": 1.0,
        "weight_scaling_columnwise": True,
    },
    "noise_model": {"type": "PCMLikeNoiseModel", "g_max": 25.0},
    "drift_compensation": {"type": "GlobalDriftCompensation"},
    "t_inference": ONE_HOUR_S,
}


def train_lenet(loader, num_classes: int, epochs: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = hwprofiles.get_model("lenet5", in_channels=1, num_classes=num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def aihwkit_accuracy(model: torch.nn.Module, loader, samples: int) -> list[float]:
    """aihwkit's side: the same settings built as its own objects, K programmed chips."""
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters.enums import BoundManagementType, WeightNoiseType

    enums = {"w_noise_type": WeightNoiseType, "bound_management": BoundManagementType}
    rpu = InferenceRPUConfig()
    for field, value in RPU_CONFIG["forward"].items():
        setattr(rpu.forward, field, enums[field][value] if field in enums else value)
    for field, value in RPU_CONFIG["mapping"].items():
        setattr(rpu.mapping, field, value)
    rpu.noise_model = PCMLikeNoiseModel(g_max=RPU_CONFIG["noise_model"]["g_max"])
    rpu.drift_compensation = GlobalDriftCompensation()
    analog = convert_to_analog(model, rpu).eval()
    accuracies = []
    for seed in range(samples):
        torch.manual_seed(seed)
        analog.program_analog_weights()
        analog.drift_analog_weights(RPU_CONFIG["t_inference"])
        with torch.no_grad():
            correct = sum(int((analog(x).argmax(1) == y).sum()) for x, y in loader)
        accuracies.append(correct / sum(len(y) for _, y in loader))
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("HWPROFILES_EXAMPLES_TINY")))
    parser.add_argument("--data-root", help="Folder of the Fashion-MNIST IDX files (default: searched).")
    parser.add_argument("--samples", type=int, default=10, help="Chip instances per simulator.")
    parser.add_argument("--out", type=Path, default=Path("examples-out/06"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. export: a profile as aihwkit settings
    exported = to_aihwkit(hwprofiles.load_profile("pcm-joshi2020"))
    (args.out / "pcm-joshi2020.aihwkit.json").write_text(json.dumps(exported, indent=2))
    print(f"pcm-joshi2020 as aihwkit settings: noise_model {exported['noise_model']['type']}, "
          f"forward.inp_res {exported['forward']['inp_res']:.5f}")  # fmt: skip

    # 2. import: aihwkit settings as a profile (the CLI: hwprofiles profiles import --from aihwkit FILE)
    (args.out / "rpu_config.json").write_text(json.dumps(RPU_CONFIG, indent=2))
    translation = from_aihwkit(RPU_CONFIG, name="lab-pcm-aihwkit", source="rpu_config.json")
    (args.out / "lab-pcm-aihwkit.yaml").write_text(hwprofiles.dump_profile(translation.profile))
    print(f"imported as {translation.profile.name}: {', '.join(translation.profile.kinds())}")
    for note in translation.notes:
        print(f"  note: {note}")

    # 3. one trained model under the imported profile, in both simulators
    if args.tiny:
        data = hwprofiles.load_dataset("synthetic", num_train=256, num_test=128, seed=0)
        args.samples = 2
    else:
        data = hwprofiles.load_dataset("fashion-mnist", root=args.data_root)
    train_loader, test_loader = make_loaders(data, batch_size=128, seed=0)
    model = train_lenet(train_loader, data.num_classes, epochs=1 if args.tiny else 3)
    calibration = [x for x, _ in list(train_loader)[:4]]
    ours = hwprofiles.evaluate(model, test_loader, translation.profile, samples=args.samples, calibration=calibration)
    print(f"hwprofiles under {translation.profile.name}, 1 h: {ours}")
    results: dict[str, Any] = {
        "profile_kinds": translation.profile.kinds(),
        "notes": translation.notes,
        "hwprofiles": {"mean": ours.mean, "ci_low": ours.ci_low, "ci_high": ours.ci_high, "n": ours.n},
    }
    if importlib.util.find_spec("aihwkit") is None:
        print("aihwkit is not installed: its side of the comparison is skipped (pip install aihwkit to run it)")
        results["aihwkit"] = None
    else:
        kit = aihwkit_accuracy(model, list(test_loader), args.samples)
        print(f"aihwkit under the same settings, 1 h: {sum(kit) / len(kit):.4f} (chips: {kit})")
        results["aihwkit"] = {"mean": sum(kit) / len(kit), "accuracies": kit}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"written to {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
