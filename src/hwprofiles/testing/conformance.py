"""The conformance kit's entry points (see :mod:`hwprofiles.testing`).

Each check is a function of one :class:`~hwprofiles.testing.harness.Case` (the kind,
its validated entry, a profile holding only that entry, the device) that raises
``AssertionError`` with a message saying what broke and how to fix it. The checks that
need no tensors are in :mod:`~hwprofiles.testing.static_checks`, those that run the
kind in :mod:`~hwprofiles.testing.behaviour_checks`. :func:`check_noise_kind` runs them
in the order of :data:`CHECKS` and stops at the first failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from hwprofiles.errors import ConformanceError, HwProfilesError
from hwprofiles.noise.base import NoiseKind
from hwprofiles.registry import NoiseModel, get_noise_model, list_noise_models, noise_models
from hwprofiles.testing.behaviour_checks import BEHAVIOUR_CHECKS
from hwprofiles.testing.harness import Case, conformance_profile
from hwprofiles.testing.static_checks import STATIC_CHECKS

# Every check by name, in the order they run (each is described where it is listed).
_CHECK_FUNCTIONS: dict[str, Callable[[Case], None]] = {**STATIC_CHECKS, **BEHAVIOUR_CHECKS}
CHECKS: tuple[str, ...] = tuple(_CHECK_FUNCTIONS)
"""The names of every check :func:`check_noise_kind` runs, in the order it runs them
(static checks first); name one in its ``skip`` to leave it out, with a reason."""


@dataclass
class ConformanceReport:
    """What :func:`check_noise_kind` found: every check passed, except those skipped."""

    kind: str
    owner: str
    devices: list[str]
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"noise kind '{self.kind}' (plugin '{self.owner}'): {len(self.passed)} checks passed "
            f"on {', '.join(self.devices)}"
        ]
        lines += [f"  ok    {name}" for name in self.passed]
        lines += [f"  skip  {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def check_noise_kind(
    kind: str,
    entry: Mapping[str, Any] | None = None,
    *,
    profile_overrides: Mapping[str, Any] | None = None,
    deterministic: bool = False,
    device: str | torch.device = "cpu",
    skip: Mapping[str, str] | None = None,
) -> ConformanceReport:
    """Check that a registered noise kind keeps the contract of :class:`~hwprofiles.noise.NoiseKind`.

    The kind is checked alone, in a profile holding only its entry (see
    :func:`conformance_profile`), on one small layer of each kind of twin: linear,
    conv, transposed conv, attention (with its attention products analog) and LSTM.

    Args:
        kind: the registered kind, e.g. ``"pcm_drift"``.
        entry: values for the entry's fields; needed for required fields, and for defaults
            that switch the kind off (each declared stage must act at noise_scale 1).
        profile_overrides: other profile fields the kind needs, e.g. an ADC for an output
            bound, or a ``t_inference_s`` its data covers.
        deterministic: the kind draws nothing (e.g. a pure quantiser): different seeds must then
            give the same output, instead of different ones.
        device: where the checks run; the dtype/device check also runs on CUDA when it is available.
        skip: ``{check name: reason}`` for checks that do not apply; the reasons go in the report.

    Returns:
        A :class:`ConformanceReport` listing the checks passed and skipped.

    Raises:
        ConformanceError: (an ``AssertionError``) at the first failed check, naming the kind,
            its plugin, the check and what to fix.
        UnknownNoiseModelError: no such kind is registered.

    >>> check_noise_kind("rram_cmo").passed[-1]
    'finite'
    """
    model = get_noise_model(kind)
    skip = dict(skip or {})
    unknown = sorted(set(skip) - set(CHECKS))
    if unknown:
        raise ValueError(f"unknown checks {unknown} in skip; the checks are {list(CHECKS)}")
    case = _case(kind, model, entry, profile_overrides, deterministic, device)
    report = ConformanceReport(kind=kind, owner=model.owner, devices=[str(d) for d in case.devices])
    for name, check in _CHECK_FUNCTIONS.items():
        if name in skip:
            report.skipped[name] = skip[name]
            continue
        try:
            check(case)
        except AssertionError as exc:
            raise _failure(kind, model, name, str(exc)) from exc
        except Exception as exc:  # a kind that raises is a failed check, not a crashed kit
            raise _failure(kind, model, name, f"{type(exc).__name__}: {exc}") from exc
        report.passed.append(name)
    return report


def _failure(kind: str, model: NoiseModel, check: str, detail: str) -> ConformanceError:
    return ConformanceError(
        f"noise kind '{kind}' (plugin '{model.owner}') fails the '{check}' check: {detail}", kind=kind, check=check
    )


def _case(
    kind: str,
    model: NoiseModel,
    entry: Mapping[str, Any] | None,
    profile_overrides: Mapping[str, Any] | None,
    deterministic: bool,
    device: str | torch.device,
) -> Case:
    """What the checks run on; a kind that cannot even be set up fails the ``setup`` check."""
    try:
        implementation = model.implementation
        profile = conformance_profile(kind, entry, profile_overrides)
    except (HwProfilesError, ValueError) as exc:
        raise _failure(
            kind,
            model,
            "setup",
            f"{exc}. Pass values for required fields as `entry` and other profile fields as `profile_overrides`.",
        ) from exc
    if not (isinstance(implementation, type) and issubclass(implementation, NoiseKind)):
        raise _failure(
            kind, model, "setup", f"its implementation {implementation!r} is not a hwprofiles.noise.NoiseKind subclass"
        )
    main = torch.device(device)
    devices = [main]
    if main.type != "cuda" and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    return Case(model, implementation, profile.noise[0], profile, deterministic, main, devices)


def parametrize_kinds(pattern: str = "*", *, owner: str | None = None, argname: str = "kind") -> Any:
    """A ``pytest.mark.parametrize`` over the registered kinds matching ``pattern`` (and ``owner``).

    Args:
        pattern: an ``fnmatch`` pattern over kind names.
        owner: keep only the kinds this plugin registered (its entry-point name).
        argname: the test argument that receives the kind.

    Raises:
        ValueError: no registered kind matches (is the plugin installed?).

    >>> @parametrize_kinds(owner="builtin")  # doctest: +SKIP
    ... def test_conforms(kind):
    ...     check_noise_kind(kind)
    """
    import pytest

    models = noise_models()
    kinds = [k for k in list_noise_models(pattern) if owner is None or models[k].owner == owner]
    if not kinds:
        owners = sorted({m.owner for m in models.values()})
        raise ValueError(
            f"no registered noise kind matches pattern '{pattern}'"
            + (f" and plugin '{owner}'" if owner else "")
            + f"; the plugins with kinds are {owners}. Is the plugin installed?"
        )
    return pytest.mark.parametrize(argname, kinds)
