"""keep_freed_memory: glibc's thresholds set at import, and left alone where they should be."""

import os
import sys

import pytest

from minidl.utils import allocator

on_glibc = sys.platform.startswith("linux") and allocator._is_glibc()


@pytest.mark.skipif(not on_glibc, reason="glibc's mallopt exists only on glibc")
def test_sets_the_thresholds_on_glibc(monkeypatch):
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert allocator.keep_freed_memory() is True


@pytest.mark.parametrize("name", allocator.USER_SETTINGS)
def test_the_users_own_malloc_settings_win(monkeypatch, name):
    monkeypatch.setenv(name, "131072")
    assert allocator.keep_freed_memory() is False


def test_does_nothing_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_import_minidl_stays_importable_with_a_users_setting():
    import subprocess

    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    result = subprocess.run([sys.executable, "-c", "import minidl; print(minidl.__version__)"],
                            env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip()
