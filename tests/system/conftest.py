"""Shared fixtures of popek's system tests.

POPEK names the binary under test (default: build/popek). Tests marked
`direct` run it on this host's /dev/kvm; tests marked `nested` run it inside
the nested harness (tests/nested), where KVM behaves like on hardware.
Missing prerequisites fail the tests loudly: nothing is skipped.
"""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))
sys.path.insert(0, str(ROOT / "tests" / "nested"))


def popek_path():
    p = pathlib.Path(os.environ.get("POPEK", ROOT / "build" / "popek"))
    return p if p.is_absolute() else ROOT / p


@pytest.fixture(scope="session")
def popek():
    p = popek_path()
    if not os.access(p, os.X_OK):
        pytest.fail(f"popek binary {p} missing: build it first (scripts/setup.sh)")
    return p


@pytest.fixture(scope="session")
def guest_dir(popek):
    """Where the build put the built-in guest's ELF files."""
    d = popek.parent / "guest"
    if not (d / "popek-guest.elf").exists():
        pytest.fail(f"{d}/popek-guest.elf missing: the build should produce it")
    return d


@pytest.fixture(scope="session")
def kvm():
    if not os.path.exists("/dev/kvm"):
        pytest.fail("/dev/kvm is missing: direct system tests need KVM")
    return "/dev/kvm"


def run(cmd, timeout=120, **kw):
    """Runs a command, stdin from /dev/null unless given, captures text."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, errors="replace", **kw)
