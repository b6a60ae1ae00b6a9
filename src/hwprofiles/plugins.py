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

What plugins fill (the noise-kind registry, the model registry, the profile library)
is owned by the module that holds it. Such a module asks to be told when plugins
load (:func:`on_load`) and when they are forgotten (:func:`on_reset`), so this
module imports none of them.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from hwprofiles import hookspecs
from hwprofiles.errors import HwProfilesError, PluginError, PluginHookError, PluginWarning
from hwprofiles.hookspecs import PROJECT
from hwprofiles.hookspecs import hookimpl as hookimpl  # importable from here, as it once was
from hwprofiles.version import __version__

BUILTIN = "builtin"
DISABLE_ENV = "HWPROFILES_DISABLE_PLUGINS"
STRICT_ENV = "HWPROFILES_STRICT_PLUGINS"
TRACE_ENV = "HWPROFILES_TRACE"


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
_load_steps: list[Callable[[], None]] = []
_reset_listeners: list[Callable[[], None]] = []


def on_load(step: Callable[[], None]) -> None:
    """Run ``step()`` whenever plugins are used, once they are imported.

    A registry whose registering hook decides whether a plugin is usable (noise
    kinds) fills itself here, so that :func:`plugin_infos`, :func:`broken_plugins`
    and every hook call already leave out the plugins it left out. The step runs on
    every use and must return at once when it has nothing to do.
    """
    _load_steps.append(step)


def on_reset(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever :func:`reset_plugin_manager` forgets the plugins, so
    that what was filled from them (a registry, the profile library) is filled again."""
    _reset_listeners.append(listener)


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


def leave_out(
    info: PluginInfo, reason: str, cause: BaseException | None = None, kinds: list[str] | None = None
) -> None:
    """Take a plugin out whole: its hooks are no longer called, and it is listed by
    :func:`broken_plugins` with ``reason``; a :class:`PluginWarning` says so once.

    What it registered is taken back by the registry it registered into.

    Args:
        info: the plugin.
        reason: why, without the plugin's name (``failed to import: ...``).
        cause: the exception behind it, chained to a strict-mode error.
        kinds: the noise kinds it tried to register, named when a profile needs one.

    Raises:
        PluginError: under ``HWPROFILES_STRICT_PLUGINS``, instead of leaving it out.
    """
    message = f"{_who(info)} {reason.rstrip('. ')}"
    hint = f"Fix or uninstall it, or skip it with {DISABLE_ENV}={info.name}."
    if strict():
        raise PluginError(f"{message}. {hint}", plugin=info.distribution) from cause
    with _lock:
        pm = _manager
        if pm is not None and pm.get_plugin(info.name) is not None:
            pm.unregister(name=info.name)
        _infos.pop(info.name, None)
        info.error = reason
        info.hooks = []
        info.kinds = list(kinds or [])
        _broken[info.name] = info
    _warn(f"{message}. It is not loaded; everything else is. {hint}")


def _load_one(pm: pluggy.PluginManager, name: str, dist: str, version: str, load: Callable[[], Any]) -> None:
    info = PluginInfo(name=name, distribution=dist, version=version, module="?")
    try:
        plugin = load()
    except (Exception, SystemExit) as exc:  # any failure inside a third-party import
        leave_out(info, f"failed to import: {type(exc).__name__}: {exc}", exc)
        return
    info.module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
    try:
        pm.register(plugin, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        leave_out(info, f"is not a valid hwprofiles plugin: {exc}", exc)
        return
    _infos[name] = info


def _register_all(pm: pluggy.PluginManager) -> None:
    blocked = _blocked()
    for name in blocked:
        pm.set_blocked(name)
    found = [(ep, *_distribution(ep)) for ep in _entry_points()]
    if BUILTIN not in {ep.name for ep, _, _ in found}:
        # Running from a source tree that was never installed: no entry points exist,
        # but the built-ins must still arrive the way pyproject.toml declares them.
        builtin = metadata.EntryPoint(name=BUILTIN, value=f"{PROJECT}.{BUILTIN}", group=PROJECT)
        found.insert(0, (builtin, PROJECT, __version__))
    for ep, dist, version in found:
        if ep.name in blocked or dist in blocked:
            continue
        _load_one(pm, ep.name, dist, version, ep.load)
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:  # a hookimpl whose name no hookspec has
            name = pm.get_name(exc.plugin) or repr(exc.plugin)
            info = _infos.get(name) or PluginInfo(name, name, "?", "?")
            known = ", ".join(sorted(n for n in vars(hookspecs) if n.startswith(f"{PROJECT}_")))
            leave_out(info, f"is not a valid hwprofiles plugin: {exc}. The hooks are: {known}", exc)
    for info in _infos.values():
        plugin = pm.get_plugin(info.name)
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])


@dataclass(frozen=True)
class Implementation:
    """One plugin's implementation of a hook, callable on its own so that a failure
    names the plugin at fault.

    Attributes:
        info: the plugin.
        hook: the hook's name.
    """

    info: PluginInfo
    hook: str
    _impl: Any = field(repr=False)

    def __call__(self, **kwargs: Any) -> Any:
        """Call it with those of ``kwargs`` its signature names.

        Raises:
            PluginHookError: it raised; the message names the plugin and the hook.
        """
        if os.environ.get(TRACE_ENV):
            print(f"hwprofiles: calling {self.hook} of plugin '{self.info.name}'", file=sys.stderr)
        try:
            return self._impl.function(**{a: kwargs[a] for a in self._impl.argnames})
        except HwProfilesError as exc:
            reason = f"failed in hook {self.hook}: {exc}"
            cause: BaseException = exc
        except Exception as exc:
            reason = f"failed in hook {self.hook}: {type(exc).__name__}: {exc}"
            cause = exc
        raise PluginHookError(
            f"{_who(self.info)} {reason}", plugin=self.info.distribution, hook=self.hook, reason=reason
        ) from cause


def implementations(hook_name: str) -> list[Implementation]:
    """Every loaded plugin's implementation of ``hook_name``, the built-in's first."""
    pm = get_plugin_manager()
    # get_hookimpls() lists implementations in registration order (pluggy *calls* them
    # in reverse); the built-in registers first, so its kinds win and others' clash.
    return [
        Implementation(
            _infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name, "?", "?"), hook_name, impl
        )
        for impl in getattr(pm.hook, hook_name).get_hookimpls()
    ]


def call_each(
    hook_name: str, kwargs_for: Callable[[PluginInfo], dict[str, Any]] = lambda info: {}
) -> Iterator[tuple[PluginInfo, Any]]:
    """Call one hook plugin by plugin, yielding ``(plugin info, result)``.

    Calling each implementation separately lets an error name the plugin at fault;
    ``kwargs_for`` builds the hook's arguments for each plugin.

    Raises:
        PluginHookError: an implementation raised; the message names its plugin.
    """
    for impl in implementations(hook_name):
        yield impl.info, impl(**kwargs_for(impl.info))


def register_from_each(hook_name: str, registrar_for: Callable[[str], Any]) -> None:
    """Call a registering hook plugin by plugin, each with ``registry=registrar_for(name)``,
    so that the registrar records which plugin owns what it adds.

    Raises:
        PluginHookError: an implementation raised; the message names its plugin.
    """
    for _ in call_each(hook_name, lambda info: {"registry": registrar_for(info.name)}):
        pass


def plugin_problem(info: PluginInfo, problem: str) -> None:
    """Report something unusable a plugin gave that can be skipped (a bad profile path):
    a :class:`PluginWarning` naming the plugin, once.

    Raises:
        PluginError: under ``HWPROFILES_STRICT_PLUGINS``, instead of the warning.
    """
    message = f"{_who(info)}: {problem}"
    if strict():
        raise PluginError(message, plugin=info.distribution)
    _warn(message)


def _loaded_manager() -> pluggy.PluginManager:
    """The plugin manager with every plugin imported (the load steps not yet run)."""
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
        _manager = pm  # set before any hook runs: leave_out and implementations need it
        try:
            _register_all(pm)
        except BaseException:
            _forget()
            raise
        return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with every plugin loaded and its kinds registered.

    Loading happens once, on first call. A plugin that fails to import, fails
    validation or fails to register its kinds is left out with a
    :class:`~hwprofiles.errors.PluginWarning` (see :func:`broken_plugins`); under
    ``HWPROFILES_STRICT_PLUGINS`` it makes this raise :class:`PluginError` naming
    its distribution instead, and nothing stays loaded.
    """
    pm = _loaded_manager()
    try:
        # Outside the lock: a step takes its registry's lock and then, to load,
        # this module's; holding ours first would invert that order.
        for step in list(_load_steps):
            step()
    except BaseException:
        _forget()
        raise
    return pm


def plugin_infos() -> list[PluginInfo]:
    """The loaded plugins, built-in first."""
    get_plugin_manager()
    return list(_infos.values())


def broken_plugins() -> list[PluginInfo]:
    """The plugins left out because they cannot be used, each with its ``error``."""
    get_plugin_manager()
    return list(_broken.values())


def _forget() -> None:
    global _manager
    with _lock:
        _manager = None
        _infos.clear()
        _broken.clear()


def reset_plugin_manager() -> None:
    """Forget loaded plugins, and what was filled from them; the next use loads them
    again (for tests, and after changing the environment variables above)."""
    with _lock:
        _forget()
        _warned.clear()
    for listener in list(_reset_listeners):
        listener()
