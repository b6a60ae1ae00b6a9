"""The checks that need no tensors: the entry model, its schema, and the stages a kind declares."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from hwprofiles.noise.base import STAGES, NoiseKind
from hwprofiles.profiles import dump_profile, parse_profile, profile_json_schema
from hwprofiles.testing.harness import Case, require
from hwprofiles.untrusted import load_yaml


def _entry_round_trip(case: Case) -> None:
    entry, model = case.entry, case.model.entry_model
    data = entry.model_dump(mode="json")
    require(data["kind"] == case.kind, f"the entry dumps kind '{data['kind']}', not '{case.kind}'")
    via_json = model.model_validate(json.loads(json.dumps(data)))
    require(via_json == entry, f"the entry does not survive JSON: {data} came back as {via_json.model_dump()}")
    via_yaml = model.model_validate(load_yaml(yaml.safe_dump(data)))
    require(via_yaml == entry, f"the entry does not survive YAML: {data} came back as {via_yaml.model_dump()}")
    again = parse_profile(load_yaml(dump_profile(case.profile)))
    require(again == case.profile, "a profile holding the entry does not survive dump_profile and parse_profile")
    require(
        type(again.noise[0]) is model,
        f"a profile's entry of kind '{case.kind}' is read as {type(again.noise[0]).__name__}, not {model.__name__}",
    )


def _json_schema(case: Case) -> None:
    try:
        from jsonschema import Draft202012Validator
    except ImportError:  # pragma: no cover - depends on the environment
        raise AssertionError(
            "the json_schema check needs jsonschema: pip install 'jsonschema>=4.18' (it is in hwprofiles' dev extra)"
        ) from None
    schema = case.model.entry_model.model_json_schema()
    Draft202012Validator.check_schema(schema)
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(case.entry.model_dump(mode="json"))]
    require(not errors, f"the entry's own JSON Schema rejects the entry: {errors}")
    profile_schema = profile_json_schema()
    Draft202012Validator.check_schema(profile_schema)
    mapping = profile_schema["properties"]["noise"]["items"].get("discriminator", {}).get("mapping", {})
    require(case.kind in mapping, f"'{case.kind}' is missing from the profile schema's kinds ({sorted(mapping)})")
    errors = [e.message for e in Draft202012Validator(profile_schema).iter_errors(case.profile.model_dump(mode="json"))]
    require(not errors, f"the profile JSON Schema rejects a profile holding the entry: {errors}")


def _number_nodes(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The number/integer alternatives of one property's schema (through anyOf, for Optional)."""
    options = node.get("anyOf", [node])
    return [o for o in options if o.get("type") in ("number", "integer")]


def _field_docs(case: Case) -> None:
    schema = case.model.entry_model.model_json_schema()
    for name, node in schema.get("properties", {}).items():
        if name == "kind":  # the Literal key: its meaning is the kind's docstring
            continue
        require(
            bool(node.get("description")),
            f"field '{name}' has no description: add Field(..., description=...) saying what it is and its unit",
        )
        for number in _number_nodes(node):
            low = "minimum" in number or "exclusiveMinimum" in number
            high = "maximum" in number or "exclusiveMaximum" in number
            require(
                low and high,
                f"field '{name}' is a number without a lower and an upper bound: "
                "give Field(...) ge/gt and le/lt, so a typo in a profile is an error",
            )


def _stages_declared(case: Case) -> None:
    impl = case.implementation
    declared = impl.stages
    require(
        isinstance(declared, (set, frozenset)) and bool(declared),
        f"{impl.__name__}.stages must be a non-empty frozenset of stage names, got {declared!r}",
    )
    unknown = sorted(set(declared) - set(STAGES))
    require(not unknown, f"{impl.__name__}.stages names unknown stages {unknown}; the stages are {list(STAGES)}")
    for stage in STAGES:
        overridden = getattr(impl, stage) is not getattr(NoiseKind, stage)
        if stage in declared:
            require(overridden, f"{impl.__name__} declares the stage '{stage}' but does not override {stage}()")
        else:
            require(
                not overridden,
                f"{impl.__name__} overrides {stage}() but does not declare '{stage}' in "
                "stages, so the engine never calls it: add it to stages or remove the method",
            )


STATIC_CHECKS: dict[str, Callable[[Case], None]] = {
    "entry_round_trip": _entry_round_trip,  # the entry survives YAML and JSON, alone and inside a profile
    "json_schema": _json_schema,  # its JSON Schema is valid (Draft 2020-12) and accepts the entry
    "field_docs": _field_docs,  # every field has a description, every number a lower and an upper bound
    "stages_declared": _stages_declared,  # `stages` names known stages, and exactly their methods are overridden
}
