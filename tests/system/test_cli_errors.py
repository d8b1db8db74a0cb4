"""Bad user input: one clear line on stderr, a non-zero status, and no VM
started (nothing from a guest on stdout)."""
import os

import pytest

from conftest import run

pytestmark = pytest.mark.direct

USAGE = 2


def expect_error(p, *needles, status=USAGE):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("popek: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    assert "popek-guest" not in p.stdout


@pytest.mark.parametrize("args,needles", [
    (["--cpus", "0"], ["--cpus 0", "between 1 and"]),
    (["--cpus", "many"], ["--cpus many", "not a number"]),
    (["--memory", "lots"], ["--memory lots", "not a size"]),
    (["--memory", "12Q"], ["--memory 12Q"]),
    (["--memory", "1M"], ["at least 2M"]),
    (["--memory", "1000T"], ["--memory", "does not fit"]),
    (["--kernel", "/nonexistent/vmlinuz"], ["/nonexistent/vmlinuz", "No such file"]),
    (["--kernel", "/etc"], ["/etc", "not a regular file"]),
    (["--kernel", "/etc/os-release"], ["not a loadable kernel"]),
    (["--bogus"], ["--bogus", "unknown option"]),
])
def test_bad_options(popek, kvm, args, needles):
    expect_error(run([popek, "run", *args]), *needles)


def test_truncated_kernel(popek, kvm, guest_dir, tmp_path):
    image = (guest_dir / "popek-guest.elf").read_bytes()
    for cut in (16, 64, 200, len(image) // 2):
        k = tmp_path / f"cut{cut}"
        k.write_bytes(image[:cut])
        expect_error(run([popek, "run", "--kernel", k]), str(k))


def test_unreadable_kernel(popek, kvm, guest_dir, tmp_path):
    k = tmp_path / "secret.elf"
    k.write_bytes((guest_dir / "popek-guest.elf").read_bytes())
    k.chmod(0)
    tmp_path.chmod(0o755)
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             popek, "run", "--kernel", k])
    expect_error(p, str(k), "Permission denied")


def test_no_kvm_device(popek):
    # A private /dev without kvm in it.
    p = run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs none /dev && exec {popek} run"])
    expect_error(p, "/dev/kvm", "no such device")


def test_kvm_permission_denied(popek, kvm):
    assert os.stat("/dev/kvm").st_mode & 0o006 == 0, "/dev/kvm is world-accessible here"
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", popek, "run"])
    expect_error(p, "/dev/kvm", "permission denied")


def test_command_line_too_long(popek, kvm):
    expect_error(run([popek, "run", "--cmdline", "x" * 5000]), "command line")


def test_help_and_version(popek):
    p = run([popek, "run", "--help"])
    assert p.returncode == 0 and "--cpus N" in p.stdout and "--memory SIZE" in p.stdout
    p = run([popek, "--version"])
    assert p.returncode == 0 and p.stdout.startswith("popek ")
    p = run([popek, "frobnicate"])
    assert p.returncode == USAGE and "unknown command" in p.stderr
