"""limit_malloc_arenas: glibc's arena cap, set once at start-up (malloc_arenas.py)."""

import ctypes

import pytest

from source_iterable.malloc_arenas import ARENAS, M_ARENA_MAX, limit_malloc_arenas


class FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return 1


def test_arenas_are_capped_through_mallopt(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    libc = FakeLibc()

    assert limit_malloc_arenas(lambda name: libc) is True
    assert libc.calls == [(M_ARENA_MAX, ARENAS)]


def test_the_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    libc = FakeLibc()

    assert limit_malloc_arenas(lambda name: libc) is False and libc.calls == []


def test_without_glibc_nothing_happens(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)

    def no_glibc(name):
        raise OSError(f"{name}: cannot open shared object file")

    assert limit_malloc_arenas(no_glibc) is False


def test_the_real_glibc_accepts_the_cap(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    try:
        ctypes.CDLL("libc.so.6")
    except OSError:
        pytest.skip("not a glibc system")
    assert limit_malloc_arenas() is True
