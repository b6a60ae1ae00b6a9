"""The exceptions hwprofiles raises.

Each one carries a message meant for a person: what went wrong, where, and how to
fix it. The command line prints them as they are, without a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HwProfilesError(Exception):
    """Base class of every error hwprofiles raises on purpose."""


class ProfileError(HwProfilesError, ValueError):
    """A profile file or object is malformed, or two profiles share a name."""


class InvalidProfilesError(ProfileError):
    """Some files offered for import are not valid profiles; nothing was imported.

    Attributes:
        failures: the invalid candidates (:class:`hwprofiles.profiles.archives.Candidate`),
            each with its errors.
    """

    def __init__(self, message: str, failures: Sequence[Any]) -> None:
        super().__init__(message)
        self.failures = list(failures)


class YamlError(HwProfilesError, ValueError):
    """A YAML or JSON file cannot be read: not UTF-8, not YAML, or over a limit on untrusted files."""


class UnknownNameError(HwProfilesError, KeyError):
    """A registry or library has nothing under the requested name."""

    def __str__(self) -> str:  # KeyError quotes its argument; a message should not be
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(HwProfilesError, ValueError):
    """Two owners register different things under the same name."""


class UnknownProfileError(UnknownNameError):
    """No profile has the requested name."""


class UnknownNoiseModelError(UnknownNameError):
    """No noise model is registered under the requested kind."""


class DuplicateNoiseModelError(DuplicateNameError):
    """Two plugins register the same noise-model kind."""


class UnknownModelError(UnknownNameError):
    """No model is registered under the requested name."""


class DuplicateModelError(DuplicateNameError):
    """Two plugins register the same model name."""


class UnknownTrainingMethodError(UnknownNameError):
    """No training method is registered under the requested name."""


class DuplicateTrainingMethodError(DuplicateNameError):
    """Two plugins register the same training-method name."""


class PluginError(HwProfilesError, RuntimeError):
    """A plugin failed to import, or one of its hooks raised.

    Attributes:
        plugin: the distribution (or module) name of the plugin at fault.
    """

    def __init__(self, message: str, plugin: str | None = None) -> None:
        super().__init__(message)
        self.plugin = plugin


class PluginHookError(PluginError):
    """A plugin's implementation of a hook raised.

    Attributes:
        hook: the hook's name.
        reason: what went wrong, without the plugin's name
            (``failed in hook NAME: RuntimeError: ...``).
    """

    def __init__(self, message: str, plugin: str | None, hook: str, reason: str) -> None:
        super().__init__(message, plugin=plugin)
        self.hook = hook
        self.reason = reason


class NoiseConfigError(HwProfilesError, ValueError):
    """A profile cannot act as asked (e.g. a drift time its data does not cover)."""


class CheckpointError(HwProfilesError, ValueError):
    """A file is not a valid hwprofiles checkpoint."""


class DataNotFoundError(HwProfilesError, FileNotFoundError):
    """A dataset could not be found where it was looked for."""


class DatasetError(HwProfilesError, ValueError):
    """A dataset request cannot be met: an unknown name, a subset larger than its split."""


class MeasurementError(HwProfilesError, ValueError):
    """A file of device measurements cannot be read or holds too little to fit a profile."""


class BridgeError(HwProfilesError, ValueError):
    """Settings of another simulator cannot be translated into a profile, or back.

    Attributes:
        reasons: one line per refused field, each saying why.
    """

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = list(reasons or [])


class ResultsStoreError(HwProfilesError, RuntimeError):
    """A results database cannot be used (not SQLite, or written by an older version)."""


class OutputError(HwProfilesError, OSError):
    """A file cannot be written (read-only folder, full disk); what was there before is kept."""


class StorageError(HwProfilesError, OSError):
    """A checkpoint storage (``--storage``) cannot be used: its protocol is unknown, the
    package of its filesystem is missing, or it cannot be written or read."""


class NotCalibratedError(HwProfilesError, RuntimeError):
    """An analog layer with a calibrated DAC was used for inference before its input
    bound was set from data."""


class ConversionError(HwProfilesError, TypeError):
    """A model could not be converted as asked (with ``strict=True``: a matrix layer
    would stay float)."""


class ConformanceError(HwProfilesError, AssertionError):
    """A noise kind breaks the contract of :class:`hwprofiles.noise.NoiseKind`.

    An ``AssertionError``, so that test runners report it as a failed test.

    Attributes:
        kind: the kind checked.
        check: the name of the failed check (one of :data:`hwprofiles.testing.CHECKS`, or ``setup``).
    """

    def __init__(self, message: str, *, kind: str, check: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.check = check


class TrainingDivergedError(HwProfilesError):
    """The training loss became NaN or infinite."""


class DistributedTrainingError(HwProfilesError, RuntimeError):
    """Data-parallel training cannot start, or one of its processes failed."""


class ConfigFileError(HwProfilesError, ValueError):
    """A command's config file (``--config``) or a study grid file holds an unknown key or a
    value of the wrong type."""


class PluginWarning(UserWarning):
    """A plugin was left out (it failed to load), or one of its hooks gave something unusable.

    The command line prints each as one ``warning:`` line; with
    ``HWPROFILES_STRICT_PLUGINS=1`` a :class:`PluginError` is raised instead.
    """


class FloatLayerWarning(UserWarning):
    """A matrix layer of a converted model stayed float, so its products carry no noise."""
