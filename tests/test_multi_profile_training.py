"""Noise-injection training under several profiles at once: each step draws its noise from
one profile of a weighted set, reproducibly, and the run trains, saves and resumes as any."""

from __future__ import annotations

import pytest
import torch

import hwprofiles
from hwprofiles.errors import HwProfilesError, UnknownProfileError
from hwprofiles.nn.convert import profile_of
from hwprofiles.train import TrainConfig, load_checkpoint, train
from hwprofiles.train.loop import build_base_model
from hwprofiles.train.methods import NIT, prepare_for_training, profile_weights

pytestmark = pytest.mark.usefixtures("clean_hwprofiles", "one_thread")

MIXED = "gaussian-additive,rram-neurram:3"  # every-layer placement and matmul placement


def test_a_profile_set_is_names_with_optional_weights_or_all() -> None:
    assert profile_weights("pcm-joshi2020") == [("pcm-joshi2020", 1.0)]
    assert profile_weights(" pcm-joshi2020 , rram-neurram:2.5") == [("pcm-joshi2020", 1.0), ("rram-neurram", 2.5)]
    every = [name for name, _ in profile_weights("all")]
    assert "ideal" not in every and set(every) == set(hwprofiles.list_profiles()) - {"ideal"}
    for bad in ("a,,b", "a:0", "a:-1", "a:x", "a:nan", "a,a"):
        with pytest.raises(HwProfilesError, match="profile set"):
            profile_weights(bad)


def test_an_unknown_profile_in_the_set_is_named_with_close_matches() -> None:
    with pytest.raises(UnknownProfileError, match="rram-neuram.*rram-neurram"):
        TrainConfig(method="nit", profile="pcm-joshi2020,rram-neuram")


def test_the_label_names_every_profile_of_the_set() -> None:
    assert TrainConfig(method="nit", profile="pcm-joshi2020").label == "nit:pcm-joshi2020"
    assert TrainConfig(method="nit", profile=MIXED).label == "nit:gaussian-additive+rram-neurram"
    assert TrainConfig(method="nit", profile="all").label == "nit:all"


def _model(config: TrainConfig) -> torch.nn.Module:
    torch.manual_seed(0)
    return prepare_for_training(build_base_model(config, 1, 10), config)


def test_each_step_takes_a_profile_by_weight_reproducibly_with_fresh_noise() -> None:
    config = TrainConfig(model="lenet5", method="nit", profile=MIXED, width=0.5)
    model = _model(config)
    model.train()
    chosen = []
    for step in range(400):
        NIT.select_noise(model, config, step, seed=7)
        chosen.append(profile_of(model).name)
    share = chosen.count("rram-neurram") / len(chosen)
    assert abs(share - 0.75) < 4 * (0.75 * 0.25 / 400) ** 0.5, share  # weights 1:3
    again = []
    for step in range(400):
        NIT.select_noise(model, config, step, seed=7)
        again.append(profile_of(model).name)
    assert again == chosen

    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    same = [s for s in range(400) if chosen[s] == "gaussian-additive"][:2]
    outputs = []
    for step in (same[0], same[0], same[1]):
        NIT.select_noise(model, config, step, seed=7)
        with torch.no_grad():
            outputs.append(model(x))
    assert torch.equal(outputs[0], outputs[1]), "one step, one seed: the same noise"
    assert not torch.allclose(outputs[0], outputs[2]), "another step of the same profile draws fresh noise"

    NIT.select_noise(model, config, None, seed=0)
    assert profile_of(model).name == "gaussian-additive", "test accuracy is measured under the first profile"


def test_a_single_profile_run_is_left_as_it_is() -> None:
    config = TrainConfig(model="lenet5", method="nit", profile="rram-neurram", width=0.5)
    model = _model(config)
    before = profile_of(model)
    NIT.select_noise(model, config, 3, seed=1)
    assert profile_of(model) is before


def test_a_many_profile_run_trains_and_resumes_to_the_same_weights(synthetic, tmp_path, monkeypatch) -> None:
    from hwprofiles.train import loop

    config = TrainConfig(
        model="lenet5", dataset="synthetic", method="nit", profile=MIXED, width=0.5, epochs=2, batch_size=128, seed=3
    )
    whole = train(config, tmp_path / "whole.pt", data=synthetic, progress=False)
    real_save = loop.save_checkpoint

    def save_then_stop(path, payload):
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "parts.pt", data=synthetic, progress=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    # the second epoch after a restart draws the profiles and noise the uninterrupted run drew
    resumed = train(config, tmp_path / "parts.pt", data=synthetic, progress=False, resume=True)
    assert resumed.resumed_from_epoch == 1 and resumed.history == whole.history
    a, b = load_checkpoint(whole.checkpoint)["state_dict"], load_checkpoint(resumed.checkpoint)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole.history[-1]["train_loss"] < whole.history[0]["train_loss"]
