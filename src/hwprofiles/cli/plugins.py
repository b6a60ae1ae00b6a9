"""``hwprofiles plugins``: the loaded plugins, and any left out."""

from __future__ import annotations

import warnings

import typer

from hwprofiles.cli.output import EXIT_INVALID, cell, console, print_error, table
from hwprofiles.errors import PluginWarning

app = typer.Typer()


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
    loaded = table("name", "distribution", "version", "hooks", "noise kinds")
    for info in infos:
        loaded.add_row(
            cell(info.name),
            cell(info.distribution),
            cell(info.version),
            cell(", ".join(info.hooks)),
            cell(", ".join(kinds.get(info.name, []))),
        )
    console().print(loaded)
    if broken:
        failed = table("not loaded", "distribution", "version", "why")
        for info in broken:
            failed.add_row(cell(info.name), cell(info.distribution), cell(info.version), cell(info.error))
        console().print(failed)
        print_error(
            f"{len(broken)} plugin{'s' if len(broken) > 1 else ''} could not be loaded (listed above); "
            "the others work. Fix or uninstall them, or skip them with HWPROFILES_DISABLE_PLUGINS=name."
        )
        raise typer.Exit(EXIT_INVALID)
