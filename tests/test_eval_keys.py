"""What a content key holds, and what it must not: fast checks without training a model."""

from __future__ import annotations

import copy
import json
from dataclasses import fields, replace

import pytest
import torch
import torch.nn as nn

import hwprofiles
from hwprofiles.eval.keys import (
    ENGINE_VERSION,
    EvalKey,
    batches_digest,
    dataset_digest,
    loader_identity,
    model_digest,
    profile_canonical,
    profile_digest,
)
from hwprofiles.eval.labels import slug, unique_labels
from hwprofiles.results import LABELS, ResultsStore, export_rows


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


# -- models ----------------------------------------------------------------------------------
def test_a_model_hash_follows_every_weight_buffer_and_the_structure():
    model = net()
    base = model_digest(model)
    assert model_digest(copy.deepcopy(model)) == base
    flipped = copy.deepcopy(model)
    with torch.no_grad():
        flipped[2].weight[1, 2] = torch.nextafter(flipped[2].weight[1, 2], torch.tensor(9.0))  # one ulp
    assert model_digest(flipped) != base
    stats = copy.deepcopy(model)
    stats[1].running_mean += 1  # a buffer, not a parameter
    assert model_digest(stats) != base
    assert model_digest(model, {"method": "qat"}) != base
    other_structure = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2), nn.ReLU())
    other_structure.load_state_dict(model.state_dict())
    assert model_digest(other_structure) != base
    assert model_digest(model.to(torch.float64)) != model_digest(net())  # dtype counts


# -- profiles -------------------------------------------------------------------------------
def test_prose_does_not_change_a_profile_hash_but_every_number_does():
    profile = hwprofiles.load_profile("pcm-joshi2020")
    base = profile_digest(profile)
    reworded = profile.model_copy(
        update={"description": "other words", "references": [], "validation": [], "stress": not profile.stress}
    )
    assert profile.validation and profile_digest(reworded) == base
    changes = {
        "noise_scale": profile.with_noise_scale(2.0),
        "t_inference_s": profile.model_copy(update={"t_inference_s": 7.0}),
        "placement": profile.model_copy(update={"placement": "every_layer"}),
        "dac": profile.model_copy(update={"dac": profile.dac.model_copy(update={"bits": 6})}),
        "adc": profile.model_copy(update={"adc": profile.adc.model_copy(update={"bound": 11.0})}),
        "tile": profile.model_copy(update={"tile": profile.tile.model_copy(update={"rows": 256})}),
        "mapping": profile.model_copy(update={"mapping": profile.mapping.model_copy(update={"g_max_us": 30.0})}),
        "noise": profile.model_copy(update={"noise": profile.noise[:-1]}),
        "name": profile.model_copy(update={"name": "pcm-renamed"}),
    }
    digests = {what: profile_digest(p) for what, p in changes.items()}
    assert base not in digests.values() and len(set(digests.values())) == len(digests)
    assert profile_digest(profile, t_inference_s=3600.0) == profile_digest(
        profile.model_copy(update={"t_inference_s": 3600.0})
    )
    assert profile_digest(profile, t_inference_s=86400.0) != base


def test_a_profile_hash_names_the_plugin_and_version_behind_each_kind(monkeypatch):
    from hwprofiles import plugins

    profile = hwprofiles.load_profile("gaussian-additive")
    owners = profile_canonical(profile)["kind_owners"]
    assert owners == {"gaussian_additive": f"hwprofiles=={hwprofiles.__version__}"}
    base = profile_digest(profile)
    real = plugins.plugin_infos
    monkeypatch.setattr(plugins, "plugin_infos", lambda: [replace(i, version="9.9") for i in real()])
    assert profile_digest(profile) != base  # a new release of a kind's plugin is measured afresh


# -- data -------------------------------------------------------------------------------------
def test_batches_hash_order_boundaries_and_labels():
    x, y = torch.arange(12.0).view(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    one = [(x, y)]
    assert batches_digest(one) == batches_digest([(x.clone(), y.clone())])
    assert batches_digest([(x[:3], y[:3]), (x[3:], y[3:])]) != batches_digest(one)  # batch boundaries
    assert batches_digest([(x.flip(0), y)]) != batches_digest(one)
    assert batches_digest([(x, 1 - y)]) != batches_digest(one)
    assert batches_digest([x]) != batches_digest([(x, y)])


def test_dataset_and_loader_identity():
    from torch.utils.data import DataLoader, TensorDataset

    from hwprofiles.data import load_dataset, make_loaders

    a = TensorDataset(torch.zeros(4, 2), torch.zeros(4))
    b = TensorDataset(torch.ones(4, 2), torch.zeros(4))
    assert dataset_digest(a) != dataset_digest(b) and dataset_digest(a) == dataset_digest(a)
    splits = load_dataset("synthetic", seed=0)
    for size in (64, 100):
        _, test = make_loaders(splits, size, seed=0, shuffle=False)
        assert loader_identity(test) == (dataset_digest(splits.test), size)
    plain = DataLoader(a, batch_size=3)
    assert loader_identity(plain) == (dataset_digest(a), 3)


# -- keys -------------------------------------------------------------------------------------
def test_every_field_of_a_key_changes_its_id():
    key = EvalKey(model="m", profile="p", data="d", calibration="c", seed=1, layer="fc", batch_size=8, device="cpu")
    assert key.engine_version == ENGINE_VERSION and len(key.id) == 64
    other = {
        "model": "m2",
        "profile": "p2",
        "data": "d2",
        "calibration": "c2",
        "seed": 2,
        "layer": "",
        "batch_size": 16,
        "device": "cuda",
        "engine_version": ENGINE_VERSION + 1,
        "bn_recalibration": "b",
    }
    assert {f.name for f in fields(EvalKey)} == set(other)
    ids = {replace(key, **{name: value}).id for name, value in other.items()}
    assert key.id not in ids and len(ids) == len(other)


# -- labels -----------------------------------------------------------------------------------
def test_unique_labels_use_what_differs_then_the_file_then_the_path():
    assert unique_labels(
        ["nit:g", "nit:g"], [{"noise_scale": 0.3, "seed": 1}, {"noise_scale": 3.0, "seed": 1}], ["a.pt", "b.pt"]
    ) == ["nit:g[noise_scale=0.3]", "nit:g[noise_scale=3]"]
    assert unique_labels(
        ["qat", "qat"], [{"seed": 0, "data_root": "/x"}, {"seed": 0, "data_root": "/y"}], ["x/m.pt", "y/m.pt"]
    ) == ["qat[x/m.pt]", "qat[y/m.pt]"]
    assert unique_labels(["clean"], [{}], ["a.pt"]) == ["clean"]
    assert unique_labels(["a", "a", "a"], [{}, {}, {}], ["m.pt", "m.pt", "m.pt"]) == [
        "a[m.pt]",
        "a[m.pt]#2",
        "a[m.pt]#3",
    ]
    assert slug("nit:pcm[act_scale=4]") == "nit-pcm-act_scale=4"


# -- the store ---------------------------------------------------------------------------------
def key(seed: int = 0, **changes) -> EvalKey:
    return replace(EvalKey(model="m" * 64, profile="p" * 64, data="d" * 64, calibration="", seed=seed), **changes)


def test_the_store_reads_back_what_it_wrote_with_its_labels(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put_eval(key(0), 0.5, {"checkpoint": "a.pt", "eval_profile": "ideal"}, noise_scale=2.0, t_inference_s=60.0)
    store.put_eval(key(1), 0.25)
    assert store.get_eval(key(0)) == 0.5 and store.get_eval(key(1)) == 0.25 and store.get_eval(key(2)) is None
    assert store.get_eval(key(0, layer="fc")) is None
    store.put_eval(key(0), 0.75)  # measured again: replaced, not doubled
    rows = ResultsStore(tmp_path / "r.sqlite").rows("evals")
    assert len(rows) == 2 and rows[-1]["accuracy"] == 0.75
    first = next(r for r in rows if r["seed"] == 1)
    assert first["key"] == key(1).id and first["model_hash"] == "m" * 64 and first["engine_version"] == ENGINE_VERSION
    assert set(LABELS) <= set(rows[0])
    with pytest.raises(ValueError, match="unknown label columns"):
        store.put_eval(key(3), 0.1, {"colour": "red"})
    with pytest.raises(ValueError, match="unknown table"):
        store.rows("evals; DROP TABLE runs")
    store.record_run(
        "a.pt", {"config": {"model": "lenet5", "method": "nit", "profile": "p"}}, 0.9, True, model_hash="h"
    )
    run = store.rows("runs")[0]
    assert (run["model_hash"], run["checkpoint"], run["method"], run["clean_accuracy"], run["finished"]) == (
        "h",
        "a.pt",
        "nit",
        0.9,
        1,
    )


def test_exports_keep_every_row_and_column():
    rows = [{"key": "k1", "accuracy": 0.5, "eval_profile": "a,b"}, {"key": "k2", "accuracy": 0.25, "eval_profile": "c"}]
    assert json.loads(export_rows(rows, "json")) == rows
    text = export_rows(rows, "csv")
    assert text.splitlines() == ["key,accuracy,eval_profile", 'k1,0.5,"a,b"', "k2,0.25,c"]
    assert export_rows([], "csv") == ""
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        export_rows(rows, "xml")


def test_parquet_export_when_pyarrow_is_there():
    pq = pytest.importorskip("pyarrow.parquet")
    import io

    rows = [{"key": "k1", "accuracy": 0.5}, {"key": "k2", "accuracy": 0.25}]
    assert pq.read_table(io.BytesIO(export_rows(rows, "parquet"))).to_pylist() == rows


# -- keys stay the same from one release to the next ----------------------------------------------
def test_a_key_id_is_the_sha256_of_its_fields_as_canonical_json():
    # A results database written by this release must be found again by the next one: the
    # id is SHA-256 over the fields as JSON with sorted keys and no spaces.
    import hashlib

    k = EvalKey(model="m", profile="p", data="d", calibration="", seed=3, layer="fc", batch_size=8, device="cpu")
    text = (
        '{"batch_size":8,"calibration":"","data":"d","device":"cpu","engine_version":'
        f'{ENGINE_VERSION},"layer":"fc","model":"m","profile":"p","seed":3}}'
    )
    assert k.id == hashlib.sha256(text.encode()).hexdigest()
    # batch-norm recalibration, added later, enters the id only when set: earlier ids stand
    b = EvalKey(
        model="m", profile="p", data="d", calibration="", seed=3, layer="fc", batch_size=8, bn_recalibration="b"
    )
    with_bn = text.replace('{"batch_size":8,', '{"batch_size":8,"bn_recalibration":"b",')
    assert b.id == hashlib.sha256(with_bn.encode()).hexdigest() != k.id


def test_a_profile_digest_does_not_depend_on_the_order_fields_were_given():
    profile = hwprofiles.load_profile("gaussian-additive")
    data = profile.model_dump(mode="json")
    shuffled = hwprofiles.parse_profile(dict(reversed(list(data.items()))))
    assert profile_digest(shuffled) == profile_digest(profile)
    canonical = profile_canonical(profile)
    assert canonical["t_inference_s"] == profile.t_inference_s and "description" not in canonical
    assert profile_canonical(profile, 60)["t_inference_s"] == 60.0
    with pytest.raises(ValueError):  # a time that is not a number never becomes part of a key
        profile_digest(profile, float("nan"))


def test_a_tensor_is_hashed_by_dtype_shape_and_values_not_by_layout():
    z = torch.zeros(2, 3)
    assert batches_digest([z]) != batches_digest([z.view(3, 2)])  # the same bytes, another shape
    assert batches_digest([z]) != batches_digest([z.to(torch.int32)])  # the same bytes, another dtype
    x = torch.arange(6.0).view(2, 3)
    assert batches_digest([x.t()]) == batches_digest([x.t().contiguous()])  # a view hashes as its values
    assert batches_digest([(x, ["a", "b"])]) != batches_digest([(x, ["a", "c"])])  # other parts by repr
    assert batches_digest([(x, 1)]) == batches_digest([[x, 1]]) != batches_digest([(x, 2)])


def test_a_model_hash_holds_the_names_of_its_tensors():
    class Holder(nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.register_buffer(name, torch.ones(2))

    assert repr(Holder("scale")) == repr(Holder("shift"))
    assert model_digest(Holder("scale")) != model_digest(Holder("shift"))
    assert model_digest(Holder("scale"), None) == model_digest(Holder("scale"), {})


def test_datasets_without_tensors_and_loaders_without_a_dataset():
    from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

    samples = [(torch.tensor([float(i)]), i % 2) for i in range(5)]
    other = [(torch.tensor([float(i)]), 1 - i % 2) for i in range(5)]
    assert dataset_digest(samples) == dataset_digest(list(samples)) != dataset_digest(other)  # lists: not cached
    assert dataset_digest(samples) == batches_digest(samples)
    ds = TensorDataset(torch.arange(10.0).view(5, 2), torch.zeros(5))
    loader = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 4, drop_last=False))
    assert loader_identity(loader) == (dataset_digest(ds), 4)  # the batch size of its batch sampler
    assert loader_identity(DataLoader(ds, batch_size=None)) == (dataset_digest(ds), 0)  # unbatched samples
    batches = [(torch.ones(2, 2), torch.zeros(2))]
    assert loader_identity(batches) == (batches_digest(batches), 0)  # no dataset: its batches, in order


def test_labels_of_repeated_models_ignore_where_data_came_from():
    configs = [
        {"act_scale": 0.1 + 0.2, "download": True, "data_root": "/a"},
        {"act_scale": 4, "download": False, "data_root": "/b"},
    ]
    assert unique_labels(["qat", "qat"], configs, ["a.pt", "b.pt"]) == ["qat[act_scale=0.3]", "qat[act_scale=4]"]
    same = [{"opt": {"a": 1, "b": 2}}, {"opt": {"b": 2, "a": 1}}]  # equal values, keys in another order
    assert unique_labels(["nit:x", "nit:x"], same, ["a.pt", "b.pt"]) == ["nit:x[a.pt]", "nit:x[b.pt]"]
    assert unique_labels(["a", "b", "a"], [{}, {}, {}], ["x.pt", "y.pt", "z.pt"]) == ["a[x.pt]", "b", "a[z.pt]"]
    assert unique_labels(["b", "a", "a"], [{}, {}, {}], ["x.pt", "y.pt", "z.pt"]) == ["b", "a[y.pt]", "a[z.pt]"]
    two = [{"bits": 4, "act_scale": 1.0}, {"bits": 8, "act_scale": 2.0}]
    assert unique_labels(["qat", "qat"], two, ["a.pt", "b.pt"]) == [
        "qat[act_scale=1,bits=4]",
        "qat[act_scale=2,bits=8]",
    ]
    assert slug("  weights:w.pt / x  ") == "weights-w.pt-x"
    assert slug("X:QAT[act_scale=4]") == "X-QAT-act_scale=4"  # capitals kept, only the separators go
    assert unique_labels(["nit", "nit"], [{"profile": "a"}, {"profile": "b"}], ["a.pt", "b.pt"]) == [
        "nit[profile=a]",
        "nit[profile=b]",
    ]


def test_relabel_gives_each_model_its_unique_label_in_place():
    from types import SimpleNamespace

    from hwprofiles.eval.labels import relabel
    from hwprofiles.train import TrainConfig

    models = [
        SimpleNamespace(label="qat", config=TrainConfig(method="qat", act_scale=s), path=f"{s}.pt") for s in (1.0, 4.0)
    ]
    out = relabel(models)
    assert out == models and [m.label for m in models] == ["qat[act_scale=1]", "qat[act_scale=4]"]
