"""Hardware profiles: the schema of a profile file, and the library of profiles on disk.

- :mod:`hwprofiles.profiles.schema`: the pydantic models; parse, read, dump, JSON Schema.
- :mod:`hwprofiles.profiles.library`: finding profiles by name (plugins, the user
  directory, ``HWPROFILES_PATH``, ``--profiles-dir``).
- :mod:`hwprofiles.profiles.install`: importing profiles into a directory and
  exporting them, all or nothing; :mod:`hwprofiles.profiles.archives` reads the
  archives they may come in.

    >>> import hwprofiles
    >>> p = hwprofiles.load_profile("pcm-joshi2020")
    >>> p.adc.bits
    8
"""

from __future__ import annotations

from hwprofiles.errors import ProfileError, UnknownProfileError
from hwprofiles.profiles.library import (
    PATH_ENV,
    USER_DIR_ENV,
    ProfileSource,
    add_profile_dirs,
    list_profiles,
    load_profile,
    profile_library,
    user_profile_dir,
)
from hwprofiles.profiles.schema import (
    ADC,
    DAC,
    PROFILE_FILE_SUFFIXES,
    PROFILE_SUFFIXES,
    Mapping,
    Profile,
    Reference,
    Tile,
    dump_profile,
    format_validation_error,
    parse_profile,
    profile_json_schema,
    profile_model,
    read_profile_file,
)
from hwprofiles.profiles.validation import PublishedFigure, ReproducedFigure, Validation

__all__ = [
    "ADC",
    "DAC",
    "PATH_ENV",
    "PROFILE_FILE_SUFFIXES",
    "PROFILE_SUFFIXES",
    "USER_DIR_ENV",
    "Mapping",
    "Profile",
    "ProfileError",
    "ProfileSource",
    "PublishedFigure",
    "Reference",
    "ReproducedFigure",
    "Tile",
    "UnknownProfileError",
    "Validation",
    "add_profile_dirs",
    "dump_profile",
    "format_validation_error",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "profile_json_schema",
    "profile_library",
    "profile_model",
    "read_profile_file",
    "user_profile_dir",
]
