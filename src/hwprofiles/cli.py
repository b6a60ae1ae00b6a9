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
    hwprofiles plugins
    hwprofiles --version

Exit codes follow ``diff`` and ``grep``: 0 when all is well; 1 when a command ran
and found something invalid (``validate``, ``list`` over a library holding a
broken file, ``plugins`` with a plugin that could not be loaded); 2 when a command
could not do what was asked (an unknown profile, two profiles with one name, a
usage error, a broken plugin under ``HWPROFILES_STRICT_PLUGINS``). Every
:class:`~hwprofiles.errors.HwProfilesError` is printed to stderr as one block
starting ``error:``, never as a traceback; a plugin left out is one ``warning:``.
Names taken from files and archives are printed with control characters escaped.

``profiles list`` over a library with a broken file still shows the valid
profiles (the broken one marked invalid) and then prints the file's errors: one
bad file in ``HWPROFILES_PATH`` should not hide every other profile, nor pass
unnoticed.

None of these commands imports torch. Commands that do (training, evaluation)
add their own sub-app with ``app.add_typer(...)`` and import torch inside their
functions, so that ``hwprofiles profiles list`` stays quick.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

import hwprofiles
from hwprofiles.errors import FloatLayerWarning, HwProfilesError, PluginWarning, ProfileError
from hwprofiles.untrusted import printable

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

PROG = "hwprofiles"
EXIT_INVALID = 1
EXIT_ERROR = 2
VALIDATE_SUFFIXES = (".yaml", ".yml", ".json")


def error_block(exc: BaseException | str) -> str:
    """``error: <message>``, later lines of the message indented under the first."""
    # Names from files and archives reach messages; escape anything that could
    # drive the terminal (docs/security.md).
    lines = [printable(line) for line in str(exc).strip().splitlines()] or [type(exc).__name__]
    return "\n".join([f"error: {lines[0]}", *(f"  {line}" for line in lines[1:])])


def _print_error(exc: BaseException | str) -> None:
    # Plain writes, not rich: a message may hold [brackets] that rich would read as markup.
    sys.stdout.flush()
    print(error_block(exc), file=sys.stderr)


class _Group(TyperGroup):
    """The root group: turns a :class:`HwProfilesError` from any command into an error block."""

    def invoke(self, ctx: Any) -> Any:
        with warnings.catch_warnings():
            # A plugin left out, or a layer left float, is one `warning:` line.
            warnings.simplefilter("always", PluginWarning)
            show = warnings.showwarning

            def _show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
                if issubclass(category, (PluginWarning, FloatLayerWarning)):
                    _print_note("warning", str(message))
                else:
                    show(message, category, *args, **kwargs)

            warnings.showwarning = _show
            try:
                return super().invoke(ctx)
            except HwProfilesError as exc:
                _print_error(exc)
                raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    name=PROG,
    cls=_Group,
    help="Hardware profiles and noise models for analog AI accelerators.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
profiles_app = typer.Typer(
    help="List, show, validate profiles; print their JSON Schema; import, export, fit them.", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped output is read by programs and tests: never wrap or cut a cell.
        console = Console(width=10_000)
    return console


def _table(*columns: str) -> Table:
    from rich.table import Table

    return Table(*columns, header_style="bold")


def _cell(value: Any) -> Any:
    from rich.text import Text

    return Text("-" if value is None or value == "" else printable(str(value)))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {hwprofiles.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    profiles_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--profiles-dir",
            help="Also search this directory (or file) for profiles. Repeatable.",
            exists=True,
            metavar="DIR",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """Hardware profiles and noise models for analog AI accelerators."""
    if profiles_dir:
        hwprofiles.add_profile_dirs(*profiles_dir)


@profiles_app.command("list")
def profiles_list() -> None:
    """Every profile found: shipped, from plugins, the user directory, HWPROFILES_PATH and --profiles-dir."""
    from hwprofiles.profiles import profile_library, read_profile_file

    table = _table("name", "technology", "DAC bits", "ADC bits", "tile rows", "noise kinds", "provider")
    errors: list[ProfileError] = []
    for name, source in profile_library().items():
        try:
            profile = read_profile_file(source.path)
        except ProfileError as exc:
            errors.append(exc)
            table.add_row(_cell(name), _cell("INVALID"), *[_cell(None)] * 4, _cell(source.provider))
            continue
        kinds = ", ".join(dict.fromkeys(profile.kinds()))
        table.add_row(
            _cell(name),
            _cell(profile.technology),
            _cell(profile.dac.bits if profile.dac else None),
            _cell(profile.adc.bits if profile.adc else None),
            _cell(profile.tile.rows if profile.tile else None),
            _cell(kinds),
            _cell(source.provider),
        )
    _console().print(table)
    for exc in errors:
        _print_error(exc)
    if errors:
        raise typer.Exit(EXIT_INVALID)


@profiles_app.command("show")
def profiles_show(
    name_or_path: Annotated[str, typer.Argument(metavar="NAME_OR_PATH", help="A profile name or a profile file.")],
) -> None:
    """Print a profile as YAML, every default filled in."""
    profile = hwprofiles.load_profile(name_or_path)
    sys.stdout.write(hwprofiles.dump_profile(profile))


def _validation_targets(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in VALIDATE_SUFFIXES and p.is_file())
    return [path]


@profiles_app.command("validate")
def profiles_validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Profile files, or directories searched for *.yaml, *.yml and *.json."),
    ],
) -> None:
    """Check profile files; print every error of every invalid one. Exit 1 if any is invalid."""
    from hwprofiles.profiles import read_profile_file

    failed = 0
    for root in paths:
        targets = _validation_targets(root)
        if not targets:
            _print_error(f"{root}: no *.yaml, *.yml or *.json files in this directory")
            failed += 1
        for path in targets:
            try:
                read_profile_file(path)
            except ProfileError as exc:
                _print_error(exc)
                failed += 1
            else:
                typer.echo(f"ok: {printable(str(path))}")
    if failed:
        raise typer.Exit(EXIT_INVALID)


@profiles_app.command("schema")
def profiles_schema() -> None:
    """Print the JSON Schema of a profile file, with every registered noise kind."""
    sys.stdout.write(json.dumps(hwprofiles.profile_json_schema(), indent=2) + "\n")


@app.command("plugins")
def plugins() -> None:
    """The loaded plugins, their hooks and noise kinds; then any plugin left out, and why. Exit 1 if any is."""
    from hwprofiles.plugins import broken_plugins, plugin_infos
    from hwprofiles.registry import noise_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)  # shown below, in a table of their own
        infos = plugin_infos()
        broken = broken_plugins()
    kinds: dict[str, list[str]] = {}
    for kind, model in sorted(noise_models().items()):
        kinds.setdefault(model.owner, []).append(kind)
    table = _table("name", "distribution", "version", "hooks", "noise kinds")
    for info in infos:
        table.add_row(
            _cell(info.name),
            _cell(info.distribution),
            _cell(info.version),
            _cell(", ".join(info.hooks)),
            _cell(", ".join(kinds.get(info.name, []))),
        )
    _console().print(table)
    if broken:
        failed = _table("not loaded", "distribution", "version", "why")
        for info in broken:
            failed.add_row(_cell(info.name), _cell(info.distribution), _cell(info.version), _cell(info.error))
        _console().print(failed)
        _print_error(
            f"{len(broken)} plugin{'s' if len(broken) > 1 else ''} could not be loaded (listed above); "
            "the others work. Fix or uninstall them, or skip them with HWPROFILES_DISABLE_PLUGINS=name."
        )
        raise typer.Exit(EXIT_INVALID)


# --------------------------------------------------------------------------------------
# The profile library on disk: import, export, fit. The work is done in
# hwprofiles.library, hwprofiles.aihwkit_bridge and hwprofiles.fit; these only parse and print.
# --------------------------------------------------------------------------------------


def _print_note(kind: str, message: str) -> None:
    lines = [printable(line) for line in message.strip().splitlines()] or [""]
    print("\n".join([f"{kind}: {lines[0]}", *(f"  {line}" for line in lines[1:])]), file=sys.stderr)


@profiles_app.command("import")
def profiles_import(
    src: Annotated[
        Path,
        typer.Argument(
            help="A profile file (.yaml, .yml, .json), a directory, or an archive "
            "(.zip, .tar, .tar.gz, .tgz); with --from aihwkit, a JSON or YAML file."
        ),
    ],
    to: Annotated[
        Path | None, typer.Option("--to", metavar="DIR", help="Import here instead of the user profile directory.")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Import the valid files and skip the others.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace profiles that already have these names.")] = False,
    source_format: Annotated[
        str, typer.Option("--from", metavar="FORMAT", help="profiles, or aihwkit (inference settings as a dict).")
    ] = "profiles",
    name: Annotated[
        str | None, typer.Option("--name", help="--from aihwkit: the profile's name [default: the file's stem].")
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="--from aihwkit: drop fields that cannot be translated, with warnings.")
    ] = False,
) -> None:
    """Validate profiles, then copy them into the user profile directory: all or nothing.

    The user profile directory is $HWPROFILES_USER_DIR, else $XDG_CONFIG_HOME/hwprofiles/profiles
    (~/.config/hwprofiles/profiles). Exit 1 if files are invalid (nothing is imported then).
    """
    from hwprofiles.library import InvalidProfilesError, import_profiles, install_profiles

    if source_format not in ("profiles", "aihwkit"):
        raise typer.BadParameter(f"'{source_format}': use profiles or aihwkit", param_hint="--from")
    if source_format == "profiles" and (name is not None or lenient):
        raise typer.BadParameter("--name and --lenient apply to --from aihwkit only", param_hint="--name/--lenient")
    if source_format == "aihwkit":
        from hwprofiles.aihwkit_bridge import read_aihwkit_file

        translation = read_aihwkit_file(src, name=name, lenient=lenient)
        for note in translation.notes:
            _print_note("note", note)
        for warning in translation.warnings:
            _print_note("warning", warning)
        result = install_profiles([translation.profile], to, force=force, sources=[str(src)])
    else:
        try:
            result = import_profiles(src, to, skip_invalid=skip_invalid, force=force)
        except InvalidProfilesError as exc:
            for failure in exc.failures:
                _print_error(failure.error or failure.source)
            _print_error(exc)
            raise typer.Exit(EXIT_INVALID) from None
        for skipped in result.skipped:
            _print_note("warning", f"skipped an invalid file:\n{skipped.error}")
    for path in result.replaced:
        typer.echo(f"replaced: {printable(str(path))}")
    for path in result.written:
        typer.echo(f"imported: {printable(path.stem)} -> {printable(str(path))}")


@profiles_app.command("export")
def profiles_export(
    names: Annotated[
        list[str], typer.Argument(metavar="NAME...", help="Profile names or files; 'all' for the whole library.")
    ],
    to: Annotated[Path, typer.Option("--to", metavar="DIR", help="The directory to write into (created if missing).")],
    force: Annotated[bool, typer.Option("--force", help="Replace files that exist with other content.")] = False,
    file_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="yaml: resolved profiles as <name>.yaml; aihwkit: InferenceRPUConfig dicts as <name>.aihwkit.json.",
        ),
    ] = "yaml",
) -> None:
    """Write profiles, every default filled in, one file per profile: all or nothing."""
    if file_format == "yaml":
        from hwprofiles.library import export_profiles

        written = export_profiles(names, to, force=force)
    elif file_format == "aihwkit":
        from hwprofiles.aihwkit_bridge import export_aihwkit

        written, skipped = export_aihwkit(names, to, force=force)
        for reason in skipped:
            _print_note("warning", reason)
    else:
        raise typer.BadParameter(f"'{file_format}': use yaml or aihwkit", param_hint="--format")
    for path in written:
        typer.echo(f"exported: {printable(str(path))}")


@profiles_app.command("fit")
def profiles_fit(
    csv_path: Annotated[
        Path, typer.Argument(metavar="CSV", help="Measurements: columns target, measured[, time_s, device].")
    ],
    name: Annotated[str, typer.Option("--name", help="The fitted profile's name.")],
    g_max_us: Annotated[
        float | None, typer.Option("--g-max-us", min=0, help="g_max in uS [default: the largest target].")
    ] = None,
    units: Annotated[
        str | None, typer.Option("--units", help="uS, nS or S [default: the file's '# units:' line, else uS].")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write the profile here instead of into the user profile directory."
        ),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="PNG", help="Also draw the diagnostic plot here.")
    ] = None,
    bins: Annotated[int, typer.Option("--bins", min=4, help="Bins of x = target/g_max for the noise fit.")] = 20,
    min_per_bin: Annotated[int, typer.Option("--min-per-bin", min=5, help="Fewest measurements a bin may hold.")] = 30,
    t0_s: Annotated[float, typer.Option("--t0-s", min=0, help="Reference time t0 of the drift model, in s.")] = 20.0,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file or profile of that name.")] = False,
) -> None:
    """Fit a PCM-like profile (programming noise, drift, stuck cells) to measured conductances."""
    from hwprofiles.fit import fit_csv, plot_fit
    from hwprofiles.io import write_text
    from hwprofiles.library import install_profiles

    if g_max_us == 0:
        raise typer.BadParameter("must be positive", param_hint="--g-max-us")
    profile, result = fit_csv(
        csv_path, name, units=units, g_max_us=g_max_us, bins=bins, min_per_bin=min_per_bin, t0_s=t0_s
    )
    if out is not None:
        if out.exists() and not force:
            raise ProfileError(f"{out} exists; pass --force to replace it")
        written = write_text(out, hwprofiles.dump_profile(profile))
    else:
        written = install_profiles([profile], force=force, sources=[str(csv_path)]).written[0]
    c = result.coefficients
    typer.echo(f"programming noise s(x) = c0 + c1 x + c2 x^2 uS (95% CI), g_max {result.g_max_us:.4g} uS:")
    for label, estimate in zip(("c0", "c1", "c2"), c):
        typer.echo(f"  {label} = {estimate.text()}")
    typer.echo(f"residuals: {result.distribution} (lowest BIC of normal, laplace, student-t)")
    if result.nu_mean is not None and result.nu_std is not None:
        typer.echo(
            f"drift nu: mean {result.nu_mean.text()}, std {result.nu_std.text()} ({result.n_drift_devices} devices)"
        )
    typer.echo(f"stuck: SA0 {result.p_sa0.text('.3g', 100, '%')}, SA1 {result.p_sa1.text('.3g', 100, '%')}")
    if plot is not None:
        typer.echo(f"plot: {plot_fit(result, plot)}")
    typer.echo(f"wrote: {printable(str(written))}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code.

    Args:
        argv: the arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 1 when profiles were found invalid, 2 on any other error.

    >>> main(["--version"])  # doctest: +SKIP
    hwprofiles 0.1.0
    0
    """
    try:
        app(args=argv, prog_name=PROG)
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return EXIT_INVALID
    except HwProfilesError as exc:  # raised outside a command, e.g. while parsing
        _print_error(exc)
        return EXIT_ERROR
    return 0


# The experiment commands register themselves on `app`; they import torch lazily.
from hwprofiles import cli_experiments  # noqa: E402,F401
