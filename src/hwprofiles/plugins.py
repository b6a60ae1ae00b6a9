"""The plugin manager: entry points of the ``hwprofiles`` group, loaded on first use.

The built-in noise models and profile library are a plugin like any other,
declared in this package's own entry points.

A plugin that cannot be used (it fails to import, is not a valid plugin, or its
``hwprofiles_register_noise_models`` hook raises, registers something that is not a
kind, or takes a kind another plugin has) is left out whole: the others load, the
command line warns once on stderr, ``hwprofiles plugins`` shows it with the reason,
and only what needs it is refused (a profile using a kind it would have brought is
told which plugin is missing). A ``hwprofiles_profile_paths`` hook that raises,
returns something other than a list of paths, or names a path that does not exist
gets a warning naming the plugin; its other paths and every other plugin still work.

Three environment variables steer loading:

``HWPROFILES_DISABLE_PLUGINS``
    comma-separated plugin names (entry-point name or distribution name) not to load.
``HWPROFILES_STRICT_PLUGINS``
    when set (and not ``0``), any of the problems above raises :class:`PluginError`
    instead: startup fails rather than go on without a plugin.
``HWPROFILES_TRACE``
    when set, every hook call is printed to stderr.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from hwprofiles import hookspecs
from hwprofiles.errors import HwProfilesError, PluginError, PluginWarning

PROJECT = "hwprofiles"
BUILTIN = "builtin"
DISABLE_ENV = "HWPROFILES_DISABLE_PLUGINS"
STRICT_ENV = "HWPROFILES_STRICT_PLUGINS"
TRACE_ENV = "HWPROFILES_TRACE"

hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass
class PluginInfo:
    """What ``hwprofiles plugins`` shows of one plugin.

    Attributes:
        error: why the plugin is left out (``None`` for a loaded plugin).
        kinds: for a plugin left out, the noise kinds it tried to register.
    """

    name: str
    distribution: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    kinds: list[str] = field(default_factory=list)


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_broken: dict[str, PluginInfo] = {}
_warned: set[str] = set()


def _blocked() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def strict() -> bool:
    """Whether ``HWPROFILES_STRICT_PLUGINS`` asks for plugin problems to be errors."""
    return os.environ.get(STRICT_ENV, "").strip() not in ("", "0")


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


def _who(info: PluginInfo) -> str:
    return f"plugin '{info.name}' (distribution '{info.distribution}')"


def _warn(message: str) -> None:
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    warnings.warn(message, PluginWarning, stacklevel=3)


def _leave_out(pm: pluggy.PluginManager, info: PluginInfo, reason: str, cause: BaseException | None = None) -> None:
    """Take a plugin out whole (hooks and kinds), or raise under HWPROFILES_STRICT_PLUGINS."""
    message = f"{_who(info)} {reason.rstrip('. ')}"
    hint = f"Fix or uninstall it, or skip it with {DISABLE_ENV}={info.name}."
    if strict():
        raise PluginError(f"{message}. {hint}", plugin=info.distribution) from cause
    plugin = pm.get_plugin(info.name)
    if plugin is not None:
        pm.unregister(plugin, name=info.name)
    from hwprofiles import registry

    registry.forget_owner(info.name)
    _infos.pop(info.name, None)
    info.error = reason
    info.hooks = []
    _broken[info.name] = info
    _warn(f"{message}. It is not loaded; everything else is. {hint}")


def _load_one(pm: pluggy.PluginManager, name: str, dist: str, version: str, load: Callable[[], Any]) -> None:
    info = PluginInfo(name=name, distribution=dist, version=version, module="?")
    try:
        plugin = load()
    except (Exception, SystemExit) as exc:  # any failure inside a third-party import
        _leave_out(pm, info, f"failed to import: {type(exc).__name__}: {exc}", exc)
        return
    info.module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        _leave_out(pm, info, f"is not a valid hwprofiles plugin: {exc}", exc)
        return
    _infos[name] = info


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
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:  # a hookimpl whose name no hookspec has
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            info = _infos.get(name) or PluginInfo(name, name, "?", "?")
            known = ", ".join(sorted(n for n in vars(hookspecs) if n.startswith(f"{PROJECT}_")))
            _leave_out(pm, info, f"is not a valid hwprofiles plugin: {exc}. The hooks are: {known}", exc)
    for info in _infos.values():
        plugin = pm.get_plugin(info.name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])


class _HookFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _call(hook_name: str, impl: Any, info: PluginInfo, args: dict[str, Any]) -> Any:
    """One plugin's implementation of a hook; a failure becomes :class:`_HookFailed`."""
    if os.environ.get(TRACE_ENV):
        print(f"hwprofiles: calling {hook_name} of plugin '{info.name}'", file=sys.stderr)
    try:
        return impl.function(**{a: args[a] for a in impl.argnames})
    except HwProfilesError as exc:
        raise _HookFailed(f"failed in hook {hook_name}: {exc}") from exc
    except Exception as exc:
        raise _HookFailed(f"failed in hook {hook_name}: {type(exc).__name__}: {exc}") from exc


def _impls(pm: pluggy.PluginManager, hook_name: str) -> Iterator[tuple[Any, PluginInfo]]:
    # get_hookimpls() lists implementations in registration order (pluggy *calls* them
    # in reverse); the built-in registers first, so its kinds win and others' clash.
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        yield impl, _infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name, "?", "?")


def call_each(
    hook_name: str, kwargs_for: Callable[[PluginInfo], dict[str, Any]] = lambda info: {}
) -> Iterator[tuple[PluginInfo, Any]]:
    """Call one hook plugin by plugin, yielding ``(plugin info, result)``.

    Calling each implementation separately lets an error name the plugin at fault;
    ``kwargs_for`` builds the hook's arguments for each plugin.

    Raises:
        PluginError: an implementation raised; the message names its plugin.
    """
    pm = get_plugin_manager()
    for impl, info in list(_impls(pm, hook_name)):
        try:
            result = _call(hook_name, impl, info, kwargs_for(info))
        except _HookFailed as exc:
            raise PluginError(f"{_who(info)} {exc.reason}", plugin=info.distribution) from exc.__cause__
        yield info, result


def _path_problem(info: PluginInfo, problem: str) -> None:
    message = f"{_who(info)}: {problem}"
    if strict():
        raise PluginError(message, plugin=info.distribution)
    _warn(message)


def profile_paths() -> list[tuple[Path, str]]:
    """The profile files and folders plugins contribute, each with its plugin's name.

    A ``hwprofiles_profile_paths`` hook that raises or returns something other than
    a list of paths, and a path that does not exist, are skipped with a
    :class:`~hwprofiles.errors.PluginWarning` naming the plugin (a
    :class:`PluginError` under ``HWPROFILES_STRICT_PLUGINS``); the rest is returned.
    """
    pm = get_plugin_manager()
    hook = "hwprofiles_profile_paths"
    found: list[tuple[Path, str]] = []
    for impl, info in list(_impls(pm, hook)):
        try:
            result = _call(hook, impl, info, {})
        except _HookFailed as exc:
            _path_problem(info, f"{exc.reason}; its profiles are left out")
            continue
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            _path_problem(
                info,
                f"hook {hook} returned {_shown(result)}, not a list of paths; "
                "its profiles are left out (return [path, ...])",
            )
            continue
        for item in result:
            if not isinstance(item, (str, os.PathLike)):
                _path_problem(info, f"hook {hook} returned {_shown(item)} in its list, not a path; it is skipped")
                continue
            path = Path(item)
            if not path.exists():
                _path_problem(info, f"hook {hook} gave {_shown(str(path))}, which does not exist; it is skipped")
                continue
            found.append((path, info.name))
    return found


def _shown(value: Any) -> str:
    from hwprofiles.untrusted import printable

    text = printable(repr(value))
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(value).__name__} {text}" if not isinstance(value, str) else text


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every plugin loaded and its kinds registered.

    Loading happens once, on first call. A plugin that fails to import, fails
    validation or fails to register its kinds is left out with a
    :class:`~hwprofiles.errors.PluginWarning` (see :func:`broken_plugins`); under
    ``HWPROFILES_STRICT_PLUGINS`` it makes this raise :class:`PluginError` naming
    its distribution instead.
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
        _broken.clear()
        try:
            _register_all(pm)
            _manager = pm  # set before the hooks run: call_each needs it
            _register_kinds(pm)
        except BaseException:
            _manager = None
            from hwprofiles import registry

            registry._reset()
            raise
        return pm


def _register_kinds(pm: pluggy.PluginManager) -> None:
    from hwprofiles.registry import NoiseModelRegistrar

    hook = "hwprofiles_register_noise_models"
    for impl, info in list(_impls(pm, hook)):
        registrar = NoiseModelRegistrar(info.name)
        try:
            _call(hook, impl, info, {"registry": registrar})
        except _HookFailed as exc:
            info.kinds = list(registrar.kinds)
            _leave_out(pm, info, exc.reason, exc.__cause__)


def plugin_infos() -> list[PluginInfo]:
    """The loaded plugins, built-in first."""
    get_plugin_manager()
    return list(_infos.values())


def broken_plugins() -> list[PluginInfo]:
    """The plugins left out because they cannot be used, each with its ``error``."""
    get_plugin_manager()
    return list(_broken.values())


def reset_plugin_manager() -> None:
    """Forget loaded plugins and kinds; the next use loads them again (for tests)."""
    global _manager
    from hwprofiles import profiles, registry

    with _lock:
        _manager = None
        _infos.clear()
        _broken.clear()
        _warned.clear()
        registry._reset()
        profiles._reset_library()
