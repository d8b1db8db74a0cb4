"""The built-in guest on this host's /dev/kvm: boots, SMP, memory sizes,
exit statuses, and both kernel entry paths."""
import re
import signal
import subprocess
import time

import pytest

from conftest import run
from guest_report import GiB, MiB, Report, check_report

pytestmark = pytest.mark.direct


def boot(popek, *args, timeout=120):
    return run([popek, "run", *args], timeout=timeout)


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_smp(popek, kvm, cpus):
    p = boot(popek, "--cpus", str(cpus))
    assert p.returncode == 0, p.stderr
    r = check_report(p.stdout, cpus=cpus, memory=256 * MiB, cmdline="")
    # Topology as popek set it, as far as this host's CPUID shows it.
    assert len({c["apic-id"] for c in r.cpus.values()}) == cpus


@pytest.mark.parametrize("memory,size", [("128M", 128 * MiB), ("3500M", 3500 * MiB),
                                         ("8G", 8 * GiB)])
def test_memory_sizes(popek, kvm, memory, size):
    p = boot(popek, "--memory", memory, "--cpus", "2")
    assert p.returncode == 0, p.stderr
    check_report(p.stdout, cpus=2, memory=size)


def test_large_memory_starts_instantly(popek, kvm):
    # 64 GiB on a host with less: reserved lazily, only touched pages count.
    p = boot(popek, "--memory", "64G", "--cmdline", "quiet", timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1].endswith("popek-guest: done")


def test_cmdline_reaches_guest(popek, kvm):
    p = boot(popek, "--cmdline", "hello=world nosmp", "--cpus", "2")
    assert p.returncode == 0, p.stderr
    assert Report(p.stdout).field("cmdline") == '"hello=world nosmp"'


def test_exits_benchmark_mode(popek, kvm):
    p = boot(popek, "--cmdline", "exits=200")
    assert p.returncode == 0, p.stderr
    m = re.search(r"popek-guest: exits=(\d+) ns=(\d+) ns-per-exit=(\d+) clock=(\S+)", p.stdout)
    assert m, p.stdout
    assert int(m[1]) == 200
    assert int(m[2]) > 0 and int(m[3]) > 0
    assert m[4] in ("kvmclock", "tsc-ticks")


@pytest.mark.parametrize("value", [0, 1, 3, 0x7f])
def test_debug_exit_status(popek, kvm, value):
    p = boot(popek, "--cmdline", f"exit={value}")
    assert p.returncode == ((value << 1) | 1) & 0xff, p.stderr
    assert "popek-guest: done" in p.stdout


def test_triple_fault(popek, kvm):
    p = boot(popek, "--cmdline", "fault=triple")
    assert p.returncode == 6, (p.returncode, p.stderr)
    assert "triple fault" in p.stderr
    assert re.search(r"rip=[0-9a-f]{16}", p.stderr), p.stderr
    assert "cr0=" in p.stderr


def test_pvh_kernel_file(popek, kvm, guest_dir):
    p = boot(popek, "--kernel", guest_dir / "popek-guest.elf", "--cpus", "2",
             "--cmdline", "from-file")
    assert p.returncode == 0, p.stderr
    check_report(p.stdout, cpus=2, memory=256 * MiB, boot="pvh", cmdline="from-file")


def test_multiboot_kernel_file(popek, kvm, guest_dir):
    p = boot(popek, "--kernel", guest_dir / "popek-guest-multiboot.elf", "--cpus", "2",
             "--memory", "3500M", "--cmdline", "mb")
    assert p.returncode == 0, p.stderr
    check_report(p.stdout, cpus=2, memory=3500 * MiB, boot="multiboot", cmdline="mb")


def test_on_reboot_restart_boots_again(popek, kvm):
    # The built-in guest resets when done: with --on-reboot restart the
    # machine boots again in the same process, until stopped from outside.
    p = subprocess.Popen([str(popek), "run", "--on-reboot", "restart", "--cmdline", "quiet"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 3 and time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line.strip() == "popek-guest: done"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert seen >= 3, (seen, err)
    assert p.returncode == 8, err   # stopped by the signal


def test_on_reboot_restart_still_exits_on_debug_exit(popek, kvm):
    p = boot(popek, "--on-reboot", "restart", "--cmdline", "quiet exit=2")
    assert p.returncode == 5, p.stderr
    assert p.stdout.count("popek-guest: done") == 1


def test_on_reboot_exit_is_default(popek, kvm):
    p = boot(popek, "--on-reboot", "exit", "--cmdline", "quiet")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("popek-guest: done") == 1
