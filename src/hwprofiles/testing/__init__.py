"""The conformance kit: the contract every noise kind keeps, checked in one call.

Plugin authors run it on their own kinds; the core runs it on every built-in kind
(``tests/test_conformance.py``)::

    from hwprofiles.testing import check_noise_kind, parametrize_kinds

    @parametrize_kinds(owner="my_device")      # every kind the plugin registers
    def test_my_kinds_conform(kind):
        check_noise_kind(kind)

    >>> from hwprofiles.testing import check_noise_kind
    >>> report = check_noise_kind("output_noise", {"sigma": 0.04})
    >>> "zero_scale" in report.passed
    True

It needs pytest only for :func:`parametrize_kinds` and jsonschema for the schema
check (both in hwprofiles' ``dev`` extra).
"""

from __future__ import annotations

from hwprofiles.testing.conformance import (
    CHECKS,
    ConformanceError,
    ConformanceReport,
    check_noise_kind,
    conformance_profile,
    parametrize_kinds,
)

__all__ = [
    "CHECKS",
    "ConformanceError",
    "ConformanceReport",
    "check_noise_kind",
    "conformance_profile",
    "parametrize_kinds",
]
