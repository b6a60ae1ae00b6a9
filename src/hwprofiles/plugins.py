"""The plugin manager: entry points of the ``hwprofiles`` group, loaded on first use.

The built-in noise models and profile library are a plugin like any other,
declared in this package's own entry points. Two environment variables steer
loading:

``HWPROFILES_DISABLE_PLUGINS``
    comma-separated plugin names (entry-point name or distribution name) not to load.
``HWPROFILES_TRACE``
    when set, every hook call is printed to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterator

import pluggy

from hwprofiles import hookspecs
from hwprofiles.errors import HwProfilesError, PluginError

PROJECT = "hwprofiles"
BUILTIN = "builtin"
DISABLE_ENV = "HWPROFILES_DISABLE_PLUGINS"
TRACE_ENV = "HWPROFILES_TRACE"

hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass
class PluginInfo:
    """What ``hwprofiles plugins`` shows of one loaded plugin."""

    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}


def _blocked() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=PROJECT):
        seen.setdefault(ep.name, ep)  # one distribution installed twice: keep the first
    return sorted(seen.values(), key=lambda ep: (ep.name != BUILTIN, ep.name))


def _distribution(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ep.name, "?"
    return dist.metadata["Name"] or ep.name, dist.version or "?"


def _load_one(pm: pluggy.PluginManager, name: str, dist: str, version: str, load: Callable[[], Any]) -> None:
    try:
        plugin = load()
    except Exception as exc:  # any failure inside a third-party import
        raise PluginError(
            f"plugin '{name}' (distribution '{dist}') failed to import: "
            f"{type(exc).__name__}: {exc}. Fix or uninstall it, or skip it with "
            f"{DISABLE_ENV}={name}.",
            plugin=dist,
        ) from exc
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(
            f"plugin '{name}' (distribution '{dist}') is not a valid hwprofiles plugin: {exc}",
            plugin=dist,
        ) from exc
    module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
    _infos[name] = PluginInfo(name=name, distribution=dist, version=version, module=module)


def _register_all(pm: pluggy.PluginManager) -> None:
    blocked = _blocked()
    for name in blocked:
        pm.set_blocked(name)
    loaded_builtin = False
    for ep in _entry_points():
        dist, version = _distribution(ep)
        if ep.name in blocked or dist in blocked:
            continue
        _load_one(pm, ep.name, dist, version, ep.load)
        loaded_builtin |= ep.name == BUILTIN
    if not loaded_builtin and BUILTIN not in blocked:
        # Running from a source tree that was never installed: no entry points exist,
        # but the built-ins must still arrive through the same hooks.
        from hwprofiles import __version__, builtin

        _load_one(pm, BUILTIN, PROJECT, __version__, lambda: builtin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # a hookimpl whose name no hookspec has
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        dist = _infos[name].distribution if name in _infos else name
        known = ", ".join(sorted(n for n in vars(hookspecs) if n.startswith(f"{PROJECT}_")))
        raise PluginError(
            f"plugin '{name}' (distribution '{dist}') is not a valid hwprofiles plugin: {exc}. "
            f"The hooks are: {known}.",
            plugin=dist,
        ) from exc
    for info in _infos.values():
        plugin = pm.get_plugin(info.name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])


def call_each(
    hook_name: str, kwargs_for: Callable[[PluginInfo], dict[str, Any]] = lambda info: {}
) -> Iterator[tuple[PluginInfo, Any]]:
    """Call one hook plugin by plugin, yielding ``(plugin info, result)``.

    Calling each implementation separately lets an error name the plugin at fault;
    ``kwargs_for`` builds the hook's arguments for each plugin.
    """
    pm = get_plugin_manager()
    trace = bool(os.environ.get(TRACE_ENV))
    caller = getattr(pm.hook, hook_name)
    # get_hookimpls() lists implementations in registration order (pluggy *calls* them
    # in reverse); the built-in registers first, so its kinds win and others' clash.
    for impl in caller.get_hookimpls():
        info = _infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name, "?", "?")
        if trace:
            print(f"hwprofiles: calling {hook_name} of plugin '{info.name}'", file=sys.stderr)
        args = kwargs_for(info)
        try:
            result = impl.function(**{a: args[a] for a in impl.argnames})
        except HwProfilesError as exc:
            if isinstance(exc, PluginError):
                raise
            raise PluginError(f"plugin '{info.name}' (distribution '{info.distribution}'), hook "
                              f"{hook_name}: {exc}", plugin=info.distribution) from exc
        except Exception as exc:
            raise PluginError(
                f"plugin '{info.name}' (distribution '{info.distribution}') failed in hook "
                f"{hook_name}: {type(exc).__name__}: {exc}",
                plugin=info.distribution,
            ) from exc
        yield info, result


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every plugin loaded and its kinds registered.

    Loading happens once, on first call. A plugin that fails to import, fails
    validation or raises in a hook makes this raise :class:`PluginError`
    naming its distribution.
    """
    global _manager
    with _lock:
        if _manager is not None:
            return _manager
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(hookspecs)
        if os.environ.get(TRACE_ENV):
            pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
            pm.enable_tracing()
        _infos.clear()
        try:
            _register_all(pm)
            _manager = pm  # set before the hooks run: call_each needs it
            from hwprofiles.registry import NoiseModelRegistrar

            for _ in call_each(
                "hwprofiles_register_noise_models",
                lambda info: {"registry": NoiseModelRegistrar(info.name)},
            ):
                pass
        except BaseException:
            _manager = None
            from hwprofiles import registry

            registry._reset()
            raise
        return pm


def plugin_infos() -> list[PluginInfo]:
    """The loaded plugins, built-in first."""
    get_plugin_manager()
    return list(_infos.values())


def reset_plugin_manager() -> None:
    """Forget loaded plugins and kinds; the next use loads them again (for tests)."""
    global _manager
    from hwprofiles import profiles, registry

    with _lock:
        _manager = None
        _infos.clear()
        registry._reset()
        profiles._reset_library()
