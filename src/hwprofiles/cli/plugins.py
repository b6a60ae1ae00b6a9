"""``hwprofiles plugins``: the loaded plugins, and any left out."""

from __future__ import annotations

import warnings
from typing import Any

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.output import EXIT_INVALID, cell, console, print_error, print_json, table
from hwprofiles.errors import PluginWarning

app = typer.Typer()


@app.command("plugins")
def plugins(as_json: opt.Json = False) -> None:
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
    if as_json:
        print_json(
            {
                "loaded": [
                    {**_described(info), "hooks": list(info.hooks), "noise_kinds": kinds.get(info.name, [])}
                    for info in infos
                ],
                "not_loaded": [{**_described(info), "error": info.error} for info in broken],
            }
        )
    else:
        loaded = table("name", "distribution", "version", "hooks", "noise kinds")
        for info in infos:
            hooks, owned = ", ".join(info.hooks), ", ".join(kinds.get(info.name, []))
            loaded.add_row(*map(cell, (info.name, info.distribution, info.version, hooks, owned)))
        console().print(loaded)
        if broken:
            failed = table("not loaded", "distribution", "version", "why")
            for info in broken:
                failed.add_row(*map(cell, (info.name, info.distribution, info.version, info.error)))
            console().print(failed)
    if broken:
        print_error(
            f"{len(broken)} plugin{'s' if len(broken) > 1 else ''} could not be loaded (listed above); "
            "the others work. Fix or uninstall them, or skip them with HWPROFILES_DISABLE_PLUGINS=name."
        )
        raise typer.Exit(EXIT_INVALID)


def _described(info: Any) -> dict[str, Any]:
    """A plugin's name, distribution and version (loaded or not)."""
    return {"name": info.name, "distribution": info.distribution, "version": info.version}
