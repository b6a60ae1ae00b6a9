"""hwprofiles.profiles.pieces: a profile taken apart into its periphery and noise entries."""

from __future__ import annotations

import hwprofiles
from hwprofiles.eval.keys import profile_canonical
from hwprofiles.profiles.pieces import pieces


def test_a_device_profile_splits_into_periphery_each_noise_entry_and_noise_alone() -> None:
    full = hwprofiles.load_profile("pcm-joshi2020")
    parts = dict(pieces(full))
    assert list(parts)[0] == "full profile" and parts["full profile"] is full
    periphery = parts["periphery only (DAC, tiles, ADC)"]
    assert periphery.noise == [] and (periphery.dac, periphery.adc, periphery.tile) == (full.dac, full.adc, full.tile)
    for entry in full.noise:
        assert parts[f"periphery + {entry.kind}"].noise == [entry]
    noise_only = parts["noise only (no DAC, ADC, tiles)"]
    assert noise_only.noise == full.noise and (noise_only.dac, noise_only.adc, noise_only.tile) == (None, None, None)
    assert len(parts) == 3 + len(full.noise)
    # the pieces are different profiles to the results store: their canonical contents differ
    assert len({repr(profile_canonical(p)) for p in parts.values()}) == len(parts)


def test_a_profile_without_periphery_splits_into_its_noise_entries() -> None:
    additive = hwprofiles.load_profile("gaussian-additive")
    assert [label for label, _ in pieces(additive)] == ["full profile"]  # nothing to take apart
    both = additive.model_copy(
        update={"noise": [*additive.noise, *hwprofiles.load_profile("gaussian-multiplicative").noise]}
    )
    parts = pieces(both)
    assert [label for label, _ in parts] == ["full profile", *(e.kind for e in both.noise)]
    assert [p.noise for _, p in parts[1:]] == [[e] for e in both.noise]
