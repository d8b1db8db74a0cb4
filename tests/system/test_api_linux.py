"""popek's Firecracker-compatible API driving Debian's stock cloud kernel
(tests/guests/api_check.py, with curl, in one L1 boot of the nested
harness): the getting-started sequence, pause/resume, a drive's backing
file changed at run time, metrics and the log file, SendCtrlAltDel, and
the same VM from a configuration file."""
import hashlib
import sys

import pytest

import faithful
from faithful import describe, field
from test_virtio_linux import GUESTS, PY, guests  # noqa: F401

pytestmark = pytest.mark.nested

MiB = 1 << 20
sys.path.insert(0, str(GUESTS))
from api_check import image_bytes  # noqa: E402


@pytest.fixture(scope="module")
def run(popek, guests):  # noqa: F811
    cmd = [PY, GUESTS / "api_check.py", "--popek", popek, "--kernel", guests["bzimage"],
           "--initrd", guests["initrd"], "--timeout", "300"]
    results, where = faithful.run_batch({"api": cmd}, timeout=720, memory_mb=4096)
    print(f"ran on the {where} path")
    return results["api"]


def num(out, key):
    v = field(out, key)
    return int(v) if v not in (None, "", "None") else None


def test_getting_started_boots_linux(run):
    status, out, _ = run
    d = describe(run, 60)
    assert field(out, "API-SETUP-STATUSES") == "204,204,204,204,204,204", d
    assert "'state': 'Running'" in field(out, "API-STATE-RUNNING"), d
    sha = hashlib.sha256(image_bytes(4 * MiB, b"popek-api-rootfs")).hexdigest()
    assert field(out, "API-GUEST-VDA-SHA") == sha, f"the guest read other bytes from vda\n{d}"
    assert field(out, "API-GUEST-CPUS") == "2", d


def test_pause_resume_linux(run):
    _, out, _ = run
    d = describe(run, 60)
    assert num(out, "API-PAUSE-STATUS") == 204, d
    assert '"Paused"' in field(out, "API-STATE-PAUSED"), d
    assert num(out, "API-TICKS-WHILE-PAUSED") == 0, f"the guest ran while paused\n{d}"
    assert num(out, "API-RESUME-STATUS") == 204, d
    assert num(out, "API-TICKS-AFTER-RESUME") == 1, d
    # 25 s paused: the guest knows it was stopped (KVM_KVMCLOCK_CTRL).
    assert num(out, "API-SOFT-LOCKUP") == 0, f"the guest reported a soft lockup\n{d}"


def test_patch_drive_resizes_in_guest(run):
    _, out, _ = run
    d = describe(run, 60)
    assert num(out, "API-PATCH-DRIVE-STATUS") == 204, d
    assert num(out, "API-VDA-GREW") == 1, \
        f"vda has {field(out, 'API-VDA-SECTORS-AFTER-PATCH')} sectors, want {8 * MiB // 512}\n{d}"


def test_ctrl_alt_del_restarts_linux(run):
    _, out, _ = run
    d = describe(run, 60)
    assert num(out, "API-CAD-STATUS") == 204, d
    assert num(out, "API-CONSOLE-RESTART") == 1, d
    assert num(out, "API-POPEK-STATUS") == 0, d


def test_metrics_and_log_file(run):
    _, out, _ = run
    d = describe(run, 60)
    assert num(out, "API-METRICS-LINES") >= 2, d
    assert num(out, "API-METRIC-vcpu.exits") > 0, d
    assert num(out, "API-METRIC-vcpu.exits") == \
        num(out, "API-METRIC-vcpu0.exits") + num(out, "API-METRIC-vcpu1.exits"), d
    assert num(out, "API-METRIC-vcpu.exit_io_out") > 0, d
    assert num(out, "API-METRIC-vcpu.exit_mmio_write") > 0, d
    # sha256sum read all 4 MiB through virtio-blk (the partition scan too).
    assert num(out, "API-METRIC-block_rootfs.read_bytes") >= 4 * MiB, d
    assert num(out, "API-METRIC-block.read_bytes") == num(out, "API-METRIC-block_rootfs.read_bytes")
    assert num(out, "API-METRIC-block_rootfs.read_count") > 0, d
    assert num(out, "API-METRIC-entropy.entropy_bytes") > 0, d
    assert num(out, "API-METRIC-put_api_requests.actions_count") >= 3, d
    assert num(out, "API-LOG-STOPPED") == 1, d


def test_config_file_boots_linux(run):
    _, out, _ = run
    d = describe(run, 60)
    assert num(out, "FILE-POPEK-STATUS") == 0, d
    assert num(out, "FILE-SCRIPT-STATUS") == 0, d
    sha = hashlib.sha256(image_bytes(4 * MiB, b"popek-api-rootfs")).hexdigest()
    assert field(out, "FILE-GUEST-VDA-SHA") == sha, d
    assert field(out, "FILE-GUEST-CPUS") == "2", d


def test_config_file_drive_rate_limiter(run):
    """The file phase's drive has a 1 MiB bucket refilled per second:
    Linux reading its 4 MiB (one full bucket, then 3 MiB of refill) takes
    3 s or more, the bytes are intact (checked above), and the metrics
    count the waits. Without the limiter the read takes well under 1 s."""
    _, out, _ = run
    d = describe(run, 60)
    t0, t1 = (float(x) for x in field(out, "FILE-GUEST-VDA-READ").split())
    assert t1 - t0 >= 2.8, d
    assert num(out, "FILE-METRIC-block_rootfs.rate_limiter_throttled_events") > 0, d
    assert num(out, "FILE-METRIC-block_rootfs.read_bytes") >= 4 * MiB, d
