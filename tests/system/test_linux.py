"""Debian's stock cloud kernel under popek, on a KVM that behaves like
hardware (the nested harness on hosts like this one): the bzImage through
the Linux boot protocol and the same kernel as an ELF vmlinux through PVH,
with the test initramfs (tests/guests/, docs/linux-guests.md), SMP, ACPI
power-off, an interactive serial console, reboot and panic.

Every popek invocation runs in one L1 boot (faithful.run_batch), each under
tests/guests/vmmrun.py, which bounds it with a timeout and can stop it after
a number of console lines."""
import pathlib
import re
import sys

import pytest

import faithful
from faithful import describe

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests"
sys.path.insert(0, str(GUESTS))
import popek_guests  # noqa: E402

pytestmark = pytest.mark.nested

MiB = 1 << 20
GiB = 1 << 30
PY = "/usr/bin/python3"
BOOT_TIMEOUT = 120          # one Linux boot in L1, seconds (10-50 s seen)
MARKER = "console=ttyS0 popek.test=marker"
GUEST_PANIC_STATUS = 10     # popek's status when the guest panicked

# name: (kernel ("bzimage" or "vmlinux"), vCPUs, --memory, bytes)
BOOTS = {
    "bzimage-1cpu-512M": ("bzimage", 1, "512M", 512 * MiB),
    "bzimage-2cpu-512M": ("bzimage", 2, "512M", 512 * MiB),
    "bzimage-1cpu-5G": ("bzimage", 1, "5G", 5 * GiB),
    "bzimage-2cpu-5G": ("bzimage", 2, "5G", 5 * GiB),
    "pvh-1cpu-512M": ("vmlinux", 1, "512M", 512 * MiB),
    "pvh-2cpu-5G": ("vmlinux", 2, "5G", 5 * GiB),
}


@pytest.fixture(scope="module")
def guests():
    """Built on the host: L1 sees the host's / read-only."""
    try:
        kernel = popek_guests.cloud_kernel()
        return {"bzimage": kernel.bzimage, "vmlinux": popek_guests.vmlinux(kernel),
                "initrd": popek_guests.initramfs(kernel=kernel), "kernel": kernel}
    except popek_guests.GuestError as e:
        pytest.fail("cannot build the Linux test guests: %s" % e)


def vmmrun(*argv, timeout=BOOT_TIMEOUT, stop_after=None, count=1):
    cmd = [PY, GUESTS / "vmmrun.py", "--timeout", str(timeout)]
    if stop_after:
        cmd += ["--stop-after", stop_after, "--count", str(count)]
    return cmd + ["--", *argv]


@pytest.fixture(scope="module")
def batch(popek, guests):
    def popek_run(kernel="bzimage", cpus=1, memory="512M", cmdline=MARKER, extra=()):
        return [popek, "run", "--kernel", guests[kernel], "--initrd", guests["initrd"],
                "--cpus", str(cpus), "--memory", memory, "--cmdline", cmdline, *extra]

    commands = {}
    for name, (kernel, cpus, memory, _bytes) in BOOTS.items():
        commands[name] = vmmrun(*popek_run(kernel, cpus, memory))
    commands["shell"] = [PY, GUESTS / "interact.py", "--timeout", str(BOOT_TIMEOUT), "--",
                         *popek_run(cpus=2, cmdline="console=ttyS0 popek.test=shell")]
    commands["reboot"] = vmmrun(*popek_run(cmdline="console=ttyS0 popek.test=reboot"))
    # The guest reboots on every boot: stop popek at the second /init.
    commands["reboot-restart"] = vmmrun(
        *popek_run(cmdline="console=ttyS0 popek.test=reboot", extra=["--on-reboot", "restart"]),
        timeout=2 * BOOT_TIMEOUT, stop_after="POPEK-INIT-START", count=2)
    commands["panic-rdinit"] = vmmrun(
        *popek_run(cmdline="console=ttyS0 rdinit=/nonexistent init=/nonexistent"))
    commands["panic-pvpanic"] = vmmrun(*popek_run(cmdline="console=ttyS0 popek.test=panic"))
    total = BOOT_TIMEOUT * (len(commands) + 1) + 300
    results, where = faithful.run_batch(commands, timeout=total, memory_mb=8192)
    print(f"ran on the {where} path")
    return results


def rejected_option(result, option):
    """popek's one-line error when it does not know an option yet."""
    status, _out, err = result
    m = re.search(r"popek: error: .*", err)
    if status == 2 and m and option in m.group(0):
        return f"popek does not accept {option} yet: {m.group(0)}"
    return None


def expect_status(result, want, what):
    status = result[0]
    why = rejected_option(result, "--initrd")
    assert not why, why
    if status == 124:
        pytest.fail(f"{what}: popek did not exit within the timeout\n{describe(result)}")
    assert status == want, f"{what}: expected status {want}\n{describe(result)}"


@pytest.mark.parametrize("name", list(BOOTS))
def test_boots_to_init(batch, name):
    kernel, cpus, _memory, size = BOOTS[name]
    result = batch[name]
    expect_status(result, 0, f"{name}: the guest's poweroff -f (ACPI S5)")
    out = result[1]
    marker = popek_guests.parse_marker(out)
    assert marker, f"{name}: no POPEK-LINUX-OK line\n{describe(result)}"
    assert marker["cpus"] == cpus, f"{name}: the guest sees {marker['cpus']} CPUs\n{describe(result)}"
    assert marker["online"] == ("0" if cpus == 1 else f"0-{cpus - 1}"), marker
    kib = marker["memtotal_kb"]
    assert 0.85 * size <= kib * 1024 <= size, \
        f"{name}: MemTotal {kib} kB is not within 85-100% of {size >> 20} MiB"
    if size > 4 * GiB:
        assert kib * 1024 > 4 * GiB, f"{name}: MemTotal {kib} kB: RAM above the MMIO hole unused"
    assert len(popek_guests.init_start_uptimes(out)) == 1, describe(result)


def test_interactive_shell(batch):
    status, out, err = batch["shell"]
    first = out.splitlines()[0] if out else ""
    m = re.match(r"INTERACT answer=(\d+) cpus=(\d+) status=(\d+)", first)
    assert m, f"interactive session failed: {first}\n{out[-3000:]}"
    assert int(m[1]) == 42 and int(m[2]) == 2, first
    assert int(m[3]) == 0, f"popek exited with status {m[3]} after poweroff -f\n{out[-3000:]}"


def test_reboot_exits_0(batch):
    result = batch["reboot"]
    expect_status(result, 0, "guest reboot -f (default --on-reboot)")
    assert "popek-init: reboot -f" in result[1], describe(result)
    assert len(popek_guests.init_start_uptimes(result[1])) == 1, describe(result)


def test_on_reboot_restart_boots_again(batch):
    result = batch["reboot-restart"]
    why = rejected_option(result, "--on-reboot") or rejected_option(result, "--initrd")
    assert not why, why
    status, out, err = result
    boots = len(popek_guests.init_start_uptimes(out))
    assert boots >= 2, (f"--on-reboot restart: {boots} boot(s) to /init, expected 2 in one "
                        f"popek process\n{describe(result)}")
    assert "VMMRUN status=" in err and "stopped=1" in err, describe(result)


def test_kernel_panic_without_init(batch):
    result = batch["panic-rdinit"]
    why = rejected_option(result, "--initrd")
    assert not why, why
    status, out, _err = result
    assert "Kernel panic" in out, f"no 'Kernel panic' on the console\n{describe(result)}"
    assert status != 124, f"popek kept running after the guest panicked\n{describe(result)}"
    assert status != 0, f"a guest panic must not exit 0\n{describe(result)}"


def test_pvpanic(batch):
    result = batch["panic-pvpanic"]
    expect_status(result, GUEST_PANIC_STATUS, "guest panic reported through pvpanic")
    assert "Kernel panic" in result[1], describe(result)
