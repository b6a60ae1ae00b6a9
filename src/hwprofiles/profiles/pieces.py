"""A profile taken apart: which part of a device costs a model its accuracy, or its speed.

    >>> import hwprofiles
    >>> from hwprofiles.profiles.pieces import pieces
    >>> [label for label, _ in pieces(hwprofiles.load_profile("pcm-joshi2020"))][:2]
    ['full profile', 'periphery only (DAC, tiles, ADC)']

Each piece is a copy of the profile with the same name, so it is evaluated, stored and keyed
like any profile: results keys come from a profile's content, and the pieces' contents differ.
"""

from __future__ import annotations

from hwprofiles.profiles.schema import Profile


def pieces(profile: Profile) -> list[tuple[str, Profile]]:
    """The profile, its periphery alone, the periphery with each noise entry, and the noise alone.

    A profile without periphery (DAC, ADC or tiles) gives itself and, when it has more than
    one noise entry, each entry alone.
    """
    out = [("full profile", profile)]
    if profile.dac is not None or profile.adc is not None or profile.tile is not None:
        out.append(("periphery only (DAC, tiles, ADC)", profile.model_copy(update={"noise": []})))
        out += [(f"periphery + {e.kind}", profile.model_copy(update={"noise": [e]})) for e in profile.noise]
        if profile.noise:
            out.append(
                ("noise only (no DAC, ADC, tiles)", profile.model_copy(update={"dac": None, "adc": None, "tile": None}))
            )
    elif len(profile.noise) > 1:
        out += [(e.kind, profile.model_copy(update={"noise": [e]})) for e in profile.noise]
    return out
