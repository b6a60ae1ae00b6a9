"""The ``hwprofiles`` command line: parses arguments, calls the API, prints.

Commands::

    hwprofiles [--profiles-dir DIR]... profiles list
    hwprofiles profiles show NAME_OR_PATH
    hwprofiles profiles validate PATH...
    hwprofiles profiles schema
    hwprofiles profiles import SRC [--to DIR] [--skip-invalid] [--force]
    hwprofiles profiles import --from aihwkit FILE [--name NAME] [--lenient]
    hwprofiles profiles export NAME...|all --to DIR [--format yaml|aihwkit]
    hwprofiles profiles fit CSV --name NAME [--out FILE] [--plot PNG]
    hwprofiles plugins [--json]
    hwprofiles models [PATTERN] [--json]
    hwprofiles train | eval | sweep | transfer | demo  [--config FILE] [--print-config] [OPTIONS]
    hwprofiles eval | sweep | transfer ... --json
    hwprofiles study GRID [--check] [--json]
    hwprofiles results export [--format csv|json|parquet]
    hwprofiles --version | --install-completion | --show-completion

Exit codes follow ``diff`` and ``grep``: 0 when all is well; 1 when a command ran
and found something invalid (``validate``, ``list`` over a library holding a
broken file, ``plugins`` with a plugin that could not be loaded, an evaluation that
failed); 2 when a command could not do what was asked (an unknown profile, two
profiles with one name, a usage error, a broken plugin under
``HWPROFILES_STRICT_PLUGINS``). Every :class:`~hwprofiles.errors.HwProfilesError` is
printed to stderr as one block starting ``error:``, never as a traceback; a plugin
left out is one ``warning:``. Names taken from files and archives are printed with
control characters escaped.

``profiles list`` over a library with a broken file still shows the valid
profiles (the broken one marked invalid) and then prints the file's errors: one
bad file in ``HWPROFILES_PATH`` should not hide every other profile, nor pass
unnoticed.

The package: :mod:`~hwprofiles.cli.root` builds the app from one module per command
(or group of commands), each a thin layer over a library function; they share
:mod:`~hwprofiles.cli.output` (printing), :mod:`~hwprofiles.cli.options` (the options
of the experiment commands) and :mod:`~hwprofiles.cli.config` (``--config`` files). Only the commands that need torch (training, evaluation)
import it, inside their functions, so that ``hwprofiles profiles list`` stays quick.
"""

from hwprofiles.cli.output import EXIT_ERROR, EXIT_INVALID, error_block
from hwprofiles.cli.root import PROG, app, main

__all__ = ["EXIT_ERROR", "EXIT_INVALID", "PROG", "app", "error_block", "main"]
