"""Bad input to popek's virtio options (--disk, --net): status 2, one
`popek: error:` line, and no VM started. Runs on this host's /dev/kvm."""
import errno
import fcntl
import signal
import subprocess
import time

import pytest

from conftest import run

pytestmark = pytest.mark.direct

USAGE = 2
SIGNAL_STATUS = 8


def expect_error(p, *needles):
    assert p.returncode == USAGE, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("popek: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    assert "popek-guest" not in p.stdout, p.stdout
    return lines[0]


def test_missing_disk(popek, kvm, tmp_path):
    img = tmp_path / "missing.img"
    expect_error(run([popek, "run", "--disk", img]), f"disk {img}", "no such file")


def is_locked(path):
    with open(path, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


def test_disk_in_use_by_another_popek(popek, kvm, tmp_path):
    img = tmp_path / "shared.img"
    img.write_bytes(bytes(1 << 20))
    # The built-in guest doing many port exits (~40 us each here) keeps the
    # first popek running long enough; it is stopped with SIGTERM.
    first = subprocess.Popen([str(popek), "run", "-q", "--cmdline", "quiet exits=100000000",
                              "--disk", str(img)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not is_locked(img):
            assert first.poll() is None, ("the first popek exited", first.communicate())
            assert time.monotonic() < deadline, "the first popek never locked the disk"
            time.sleep(0.05)
        line = expect_error(run([popek, "run", "--disk", img]), f"disk {img}", "in use")
        assert "locked" in line, line
        # A read-only user is refused too (a writer holds the lock).
        expect_error(run([popek, "run", "--disk", f"{img},ro"]), "in use")
        assert first.poll() is None, "the first popek stopped while the second was refused"
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=30)
    assert first.returncode == SIGNAL_STATUS, (first.returncode, out, err)


@pytest.mark.parametrize("mac,needles", [
    ("zz:00:00:00:00:01", ["not six hex pairs"]),
    ("52:54:00:12:34", ["not six hex pairs"]),
    ("52:54:00:12:34:56:78", ["not six hex pairs"]),
    ("01:00:5e:00:00:01", ["multicast"]),
])
def test_malformed_mac(popek, kvm, mac, needles):
    expect_error(run([popek, "run", "--net", f"tap=pkbad0,mac={mac}"]),
                 f"--net tap=pkbad0,mac={mac}", *needles)


@pytest.mark.parametrize("name,needles", [
    ("a/b", ["not a valid interface name"]),
    ("x" * 16, ["longer than 15 characters"]),
])
def test_invalid_tap_name(popek, kvm, name, needles):
    expect_error(run([popek, "run", "--net", f"tap={name}"]), f"tap={name}", *needles)


def test_tap_unprivileged_user_stops_at_kvm(popek, kvm):
    """As uid 65534, /dev/kvm (root and group kvm only) is what popek
    reports: it is opened before the tap."""
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             popek, "run", "--net", "tap=pkperm0"])
    expect_error(p, "/dev/kvm", "permission denied")


def test_tap_cannot_be_created(popek, kvm):
    """Root without CAP_NET_ADMIN (dropped from the bounding set) reaches
    /dev/kvm and fails at the tap's creation."""
    p = run(["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin",
             popek, "run", "--net", "tap=pkperm0"])
    expect_error(p, "--net tap=pkperm0", "cannot create tap pkperm0",
                 "Operation not permitted", "CAP_NET_ADMIN")
