"""Importing profiles into the profile library and exporting them out of it.

The work is done in :mod:`hwprofiles.profiles.install` (writing, all or nothing) and
:mod:`hwprofiles.profiles.archives` (reading files, directories and archives, within
:class:`ArchiveLimits`); this module keeps their names importable from here.

    >>> from hwprofiles.library import export_profiles
    >>> export_profiles(["pcm-joshi2020"], "exported")  # doctest: +SKIP
    [PosixPath('exported/pcm-joshi2020.yaml')]
"""

from __future__ import annotations

from hwprofiles.errors import InvalidProfilesError
from hwprofiles.profiles.archives import (
    DEFAULT_ARCHIVE_LIMITS,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_UNPACKED_BYTES,
    MAX_ZIP_DIRECTORY_BYTES,
    TAR_SUFFIXES,
    ZIP_SUFFIXES,
    ArchiveLimits,
    Candidate,
    read_candidates,
)
from hwprofiles.profiles.install import (
    ImportResult,
    commit_files,
    export_profiles,
    import_profiles,
    install_profiles,
    plan_writes,
)

__all__ = [
    "DEFAULT_ARCHIVE_LIMITS",
    "MAX_MEMBERS",
    "MAX_MEMBER_BYTES",
    "MAX_UNPACKED_BYTES",
    "MAX_ZIP_DIRECTORY_BYTES",
    "TAR_SUFFIXES",
    "ZIP_SUFFIXES",
    "ArchiveLimits",
    "Candidate",
    "ImportResult",
    "InvalidProfilesError",
    "commit_files",
    "export_profiles",
    "import_profiles",
    "install_profiles",
    "plan_writes",
    "read_candidates",
]
