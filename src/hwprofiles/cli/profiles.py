"""``hwprofiles profiles ...``: list, show, validate profiles, print their schema; import,
export and fit them. The work is done in :mod:`hwprofiles.profiles`,
:mod:`hwprofiles.profiles.install`, :mod:`hwprofiles.aihwkit_bridge` and :mod:`hwprofiles.fit`;
these commands parse and print. None imports torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import hwprofiles
from hwprofiles.cli import options as opt
from hwprofiles.cli.output import EXIT_INVALID, cell, console, print_error, print_json, print_note, table
from hwprofiles.errors import ProfileError
from hwprofiles.untrusted import printable

app = typer.Typer(
    help="List, show, validate profiles; print their JSON Schema; import, export, fit them.", no_args_is_help=True
)


@app.command("list")
def profiles_list(as_json: opt.Json = False) -> None:
    """Every profile found: shipped, from plugins, the user directory, HWPROFILES_PATH and --profiles-dir."""
    from hwprofiles.profiles import profile_library, read_profile_file

    rows: list[dict[str, Any]] = []
    errors: list[ProfileError] = []
    for name, source in profile_library().items():
        row: dict[str, Any] = {"name": name, "provider": source.provider, "path": str(source.path), "valid": True}
        try:
            profile = read_profile_file(source.path)
        except ProfileError as exc:
            errors.append(exc)
            rows.append({**row, "valid": False, "error": str(exc)})
            continue
        rows.append(
            {
                **row,
                "technology": profile.technology,
                "dac_bits": profile.dac.bits if profile.dac else None,
                "adc_bits": profile.adc.bits if profile.adc else None,
                "tile_rows": profile.tile.rows if profile.tile else None,
                "noise_kinds": list(dict.fromkeys(profile.kinds())),
            }
        )
    if as_json:
        print_json(rows)
    else:
        listed = table("name", "technology", "DAC bits", "ADC bits", "tile rows", "noise kinds", "provider")
        for row in rows:
            technology = row.get("technology", "INVALID")
            shape = [row.get(key) for key in ("dac_bits", "adc_bits", "tile_rows")]
            kinds = ", ".join(row["noise_kinds"]) if row["valid"] else None
            listed.add_row(*map(cell, (row["name"], technology, *shape, kinds, row["provider"])))
        console().print(listed)
    for error in errors:
        print_error(error)
    if errors:
        raise typer.Exit(EXIT_INVALID)


@app.command("show")
def profiles_show(
    name_or_path: Annotated[str, typer.Argument(metavar="NAME_OR_PATH", help="A profile name or a profile file.")],
    as_json: opt.Json = False,
) -> None:
    """Print a profile as YAML (or JSON), every default filled in."""
    profile = hwprofiles.load_profile(name_or_path)
    if as_json:
        print_json(profile.model_dump(mode="json"))
    else:
        sys.stdout.write(hwprofiles.dump_profile(profile))


def _validation_targets(path: Path) -> list[Path]:
    from hwprofiles.profiles import PROFILE_FILE_SUFFIXES  # pydantic only when a command needs it

    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in PROFILE_FILE_SUFFIXES and p.is_file())
    return [path]


@app.command("validate")
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
            print_error(f"{root}: no *.yaml, *.yml or *.json files in this directory")
            failed += 1
        for path in targets:
            try:
                read_profile_file(path)
            except ProfileError as exc:
                print_error(exc)
                failed += 1
            else:
                typer.echo(f"ok: {printable(str(path))}")
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command("schema")
def profiles_schema() -> None:
    """Print the JSON Schema of a profile file, with every registered noise kind."""
    sys.stdout.write(json.dumps(hwprofiles.profile_json_schema(), indent=2) + "\n")


@app.command("import")
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
        str | None, typer.Option("--name", help="--from aihwkit: the profile's name.", show_default="the file's stem")
    ] = None,
    lenient: Annotated[
        bool, typer.Option("--lenient", help="--from aihwkit: drop fields that cannot be translated, with warnings.")
    ] = False,
) -> None:
    """Validate profiles, then copy them into the user profile directory: all or nothing.

    The user profile directory is $HWPROFILES_USER_DIR, else $XDG_CONFIG_HOME/hwprofiles/profiles
    (~/.config/hwprofiles/profiles). Exit 1 if files are invalid (nothing is imported then).
    """
    from hwprofiles.errors import InvalidProfilesError
    from hwprofiles.profiles.install import import_profiles, install_profiles

    if source_format not in ("profiles", "aihwkit"):
        raise typer.BadParameter(f"'{source_format}': use profiles or aihwkit", param_hint="--from")
    if source_format == "profiles" and (name is not None or lenient):
        raise typer.BadParameter("--name and --lenient apply to --from aihwkit only", param_hint="--name/--lenient")
    if source_format == "aihwkit":
        from hwprofiles.aihwkit_bridge import read_aihwkit_file

        translation = read_aihwkit_file(src, name=name, lenient=lenient)
        for note in translation.notes:
            print_note("note", note)
        for warning in translation.warnings:
            print_note("warning", warning)
        result = install_profiles([translation.profile], to, force=force, sources=[str(src)])
    else:
        try:
            result = import_profiles(src, to, skip_invalid=skip_invalid, force=force)
        except InvalidProfilesError as exc:
            for failure in exc.failures:
                print_error(failure.error or failure.source)
            print_error(exc)
            raise typer.Exit(EXIT_INVALID) from None
        for skipped in result.skipped:
            print_note("warning", f"skipped an invalid file:\n{skipped.error}")
    for path in result.replaced:
        typer.echo(f"replaced: {printable(str(path))}")
    for path in result.written:
        typer.echo(f"imported: {printable(path.stem)} -> {printable(str(path))}")


@app.command("export")
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
        from hwprofiles.profiles.install import export_profiles

        written = export_profiles(names, to, force=force)
    elif file_format == "aihwkit":
        from hwprofiles.aihwkit_bridge import export_aihwkit

        written, skipped = export_aihwkit(names, to, force=force)
        for reason in skipped:
            print_note("warning", reason)
    else:
        raise typer.BadParameter(f"'{file_format}': use yaml or aihwkit", param_hint="--format")
    for path in written:
        typer.echo(f"exported: {printable(str(path))}")


@app.command("fit")
def profiles_fit(
    csv_path: Annotated[
        Path, typer.Argument(metavar="CSV", help="Measurements: columns target, measured[, time_s, device].")
    ],
    name: Annotated[str, typer.Option("--name", help="The fitted profile's name.")],
    g_max_us: Annotated[
        float | None, typer.Option("--g-max-us", min=0, help="g_max in uS.", show_default="the largest target")
    ] = None,
    units: Annotated[
        str | None, typer.Option("--units", help="uS, nS or S.", show_default="the file's '# units:' line, else uS")
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
    from hwprofiles.profiles.install import install_profiles

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
