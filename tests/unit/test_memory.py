"""The server process's malloc settings (mailstack/memory.py, store/allocator.py) and the
modules a server without HTTP listeners does not load (issue 16: memory of ``serve``)."""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys

import pytest
from twisted.internet import task

from mailstack import memory
from mailstack.store import allocator


@pytest.fixture
def fresh(monkeypatch):
    """As in a process that has not limited its heaps yet, with no libc loaded."""
    monkeypatch.setattr(memory, "_limited", False)
    monkeypatch.setattr(allocator, "_mallopt", None)
    monkeypatch.setattr(allocator, "_trim", None)


def test_the_heaps_are_limited_once(fresh, monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_mallopt", lambda param, value: calls.append(
        (param, value)) or 1)
    assert memory.limit_heaps() and memory.limit_heaps()
    assert calls == [(allocator.M_ARENA_MAX, memory.HEAPS)]


def test_without_glibc_nothing_is_tuned_and_nothing_fails(fresh, monkeypatch):
    def no_libc(*args, **kwargs):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert memory.limit_heaps() is False
    assert allocator.return_free_memory() is False


def test_a_c_library_without_mallopt_is_harmless(fresh, monkeypatch):
    class Musl:
        pass

    monkeypatch.setattr(ctypes, "CDLL", lambda *args, **kwargs: Musl())
    assert memory.limit_heaps() is False
    assert allocator.return_free_memory() is False


def test_glibc_accepts_the_limit(fresh):
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc only")
    assert memory.limit_heaps()


def test_free_memory_is_given_back_every_interval_until_stopped(monkeypatch):
    trims = []
    monkeypatch.setattr(allocator, "return_free_memory", lambda: trims.append(1) or True)
    clock = task.Clock()
    trimmer = memory.ReturnFreeMemory(clock, interval=1.0)
    trimmer.startService()
    assert trims == []                     # not at start: nothing was freed yet
    clock.advance(1.0)
    clock.advance(1.0)
    assert len(trims) == 2
    trimmer.stopService()
    clock.advance(5.0)
    assert len(trims) == 2 and not clock.getDelayedCalls()


def test_a_server_without_http_or_metrics_listeners_loads_no_web_stack():
    code = ("import sys, mailstack.service, mailstack.cli.main\n"
            "print(sorted(m for m in ('twisted.web', 'prometheus_client', 'xml',\n"
            "      'plistlib', 'mailstack.protocols.http') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
