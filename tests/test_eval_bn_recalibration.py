"""Batch-norm recalibration on each chip as part of an evaluation: the numbers are those of
recalibrating by hand, and the recalibration data are part of every result's key."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import hwprofiles
from hwprofiles.results import ResultsStore
from hwprofiles.train.loop import accuracy

pytestmark = pytest.mark.usefixtures("one_thread")


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 28 * 28, 10)
    ).eval()


def test_each_chip_recalibrates_batch_norm_as_by_hand_and_the_key_says_so(synthetic, loaders, tmp_path) -> None:
    train_loader, test_loader = loaders
    bn_batches = [x for x, _ in list(train_loader)[:2]]
    model = bn_net()
    store = ResultsStore(tmp_path / "r.sqlite")
    plain = hwprofiles.evaluate(model, test_loader, "gaussian-additive", samples=2, store=store)
    recal = hwprofiles.evaluate(
        model, test_loader, "gaussian-additive", samples=2, bn_recalibration=bn_batches, store=store
    )
    by_hand = []
    for seed in range(2):
        noisy = hwprofiles.to_noisy(model, "gaussian-additive")
        hwprofiles.program(noisy, seed=seed)
        hwprofiles.recalibrate_batchnorm(noisy, bn_batches)
        by_hand.append(accuracy(noisy, test_loader))
    assert list(recal.accuracies) == by_hand and recal.accuracies != plain.accuracies
    assert set(recal.keys).isdisjoint(plain.keys)
    assert recal.hashes["bn_recalibration"] and plain.hashes["bn_recalibration"] == ""
    # read back from the store, not measured again; other recalibration data are other results
    again = hwprofiles.evaluate(
        model, test_loader, "gaussian-additive", samples=2, bn_recalibration=bn_batches, store=store
    )
    assert again.accuracies == recal.accuracies and len(store.rows("evals")) == 4
    other = hwprofiles.evaluate(
        model, test_loader, "gaussian-additive", samples=2, bn_recalibration=bn_batches[:1], store=store
    )
    assert set(other.keys).isdisjoint(recal.keys)
    with pytest.raises(ValueError, match="bn_recalibration needs at least one batch"):
        hwprofiles.evaluate(model, test_loader, "gaussian-additive", bn_recalibration=[])
