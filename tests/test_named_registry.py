"""The generic registry behind noise kinds, models and training methods."""

from __future__ import annotations

import threading

import pytest

from hwprofiles.errors import DuplicateNameError, PluginError, UnknownNameError
from hwprofiles.named_registry import Registry, import_target


def test_a_lazy_target_is_imported_on_first_use_and_kept():
    reg: Registry[object] = Registry("thing")
    entry = reg.register("join", "os.path:join", owner="lab")
    assert entry.owner == "lab" and not entry._resolved
    import os.path

    assert reg.get("join") is os.path.join and entry._resolved


def test_a_target_that_cannot_be_imported_names_its_owner_and_name():
    reg: Registry[object] = Registry("noise kind")
    reg.register("broken", "no_such_module_here:Thing", owner="lab-plugin")
    with pytest.raises(
        PluginError, match=r"plugin 'lab-plugin': 'no_such_module_here:Thing', registered as noise kind 'broken'"
    ) as info:
        reg.get("broken")
    assert info.value.plugin == "lab-plugin"


def test_unknown_names_get_close_matches_valid_names_and_the_registrys_own_error():
    class UnknownShape(UnknownNameError):
        pass

    reg: Registry[int] = Registry("shape", unknown_error=UnknownShape, hint="or 'zoo:NAME'")
    reg.register("square", 4)
    reg.register("triangle", 3)
    with pytest.raises(UnknownShape) as info:
        reg.get("squre")
    assert (
        str(info.value) == "unknown shape 'squre'. Did you mean 'square'? Valid shapes: square, triangle; or 'zoo:NAME'"
    )
    with pytest.raises(UnknownNameError, match=r"unknown shape 'circle'\. Valid"):
        reg.entry("circle")
    assert "\x1b" not in Registry("x").unknown_message("a\x1b[31mb")


def test_a_second_owner_of_a_name_is_refused_and_the_same_call_again_is_not():
    reg: Registry[str] = Registry("model")
    first = reg.register("net", "pkg:build", owner="a")
    assert reg.register("net", "pkg:build", owner="a") is first
    with pytest.raises(DuplicateNameError, match=r"model 'net' is registered twice: by plugin 'a' and by plugin 'b'"):
        reg.register("net", "other:build", owner="b")
    assert reg.entry("net").source == "pkg:build" and reg.entry("net").owner == "a"


def test_names_filter_by_pattern_and_owners_can_be_forgotten():
    reg: Registry[int] = Registry("kind")
    for name, owner in (("pcm_drift", "core"), ("pcm_read", "core"), ("fefet", "lab")):
        reg.register(name, 1, owner=owner)
    assert reg.names("pcm_*") == ["pcm_drift", "pcm_read"] and list(reg) == ["fefet", "pcm_drift", "pcm_read"]
    assert reg.forget_owner("core") == ["pcm_drift", "pcm_read"] and reg.names() == ["fefet"]
    assert "fefet" in reg and len(reg) == 1 and reg.forget_owner("nobody") == []
    reg.unregister("fefet")
    assert len(reg) == 0


def test_the_loader_runs_once_until_reset_and_a_failed_load_leaves_nothing_behind():
    calls = []

    def load(reg: Registry[int]) -> None:
        calls.append(1)
        reg.register("a", 1, owner="plugin")
        if len(calls) == 2:
            reg.register("b", 2, owner="plugin")
            raise RuntimeError("hook failed")

    reg: Registry[int] = Registry("thing", loader=load)
    assert reg.names() == ["a"] and reg.get("a") == 1 and calls == [1]
    reg.reset()
    with pytest.raises(RuntimeError):
        reg.names()
    assert reg._entries == {}  # nothing half-loaded
    assert reg.names() == ["a"] and len(calls) == 3


def test_listeners_hear_every_change_so_caches_can_be_dropped():
    reg: Registry[int] = Registry("kind")
    heard = []
    reg.on_change(lambda: heard.append(1))
    reg.register("a", 1)
    reg.register("a", 1)  # the same call again changes nothing
    reg.forget_owner("user")
    reg.reset()
    assert len(heard) == 3


def test_readers_on_other_threads_wait_for_the_loader_to_finish():
    started, release = threading.Event(), threading.Event()

    def load(reg: Registry[int]) -> None:
        started.set()
        release.wait(5)
        reg.register("late", 1)

    reg: Registry[int] = Registry("thing", loader=load)
    seen: list[list[str]] = []
    first = threading.Thread(target=lambda: seen.append(reg.names()))
    first.start()
    started.wait(5)
    second = threading.Thread(target=lambda: seen.append(reg.names()))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert seen == [["late"], ["late"]]


def test_import_target_follows_dotted_attributes_and_refuses_other_forms():
    assert import_target("os:path.join") is __import__("os").path.join
    with pytest.raises(ValueError, match="module:attr"):
        import_target("os.path.join")
