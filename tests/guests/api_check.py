#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Drives popek's Firecracker-compatible API with Debian's curl on a Linux
guest (run where KVM is faithful, e.g. in the nested harness's L1).

    api_check.py --popek P --kernel K --initrd I [--timeout 300]

(--timeout bounds the API phase; the file phase has 240 s of its own.)

Phase "api": `popek run --api-sock SOCK`, then Firecracker's getting-started
sequence with curl --unix-socket: PUT /logger, PUT /metrics, PUT
/boot-source (the cloud kernel and the test initramfs in exec mode), PUT
/drives/rootfs (a 4 MiB image of known bytes), PUT /machine-config (2
vCPUs, 512 MiB), PUT /actions InstanceStart. The guest prints the sha256 of
/dev/vda, then a TICK line every 0.2 s with vda's size in sectors. Then:
PATCH /vm Paused for 25 s (no TICK may follow), Resumed (TICKs again, and
no soft-lockup report: KVM_KVMCLOCK_CTRL), PATCH
/drives/rootfs to an 8 MiB image (the guest must see the new size), PUT
/actions FlushMetrics, PUT /actions SendCtrlAltDel (Linux restarts: popek
exits 0). Phase "file": the same VM from `popek run --config-file`, its drive
rate-limited to 1 MiB/s (bandwidth bucket); the guest prints vda's sha256,
how long reading it took (/proc/uptime before and after) and powers off.

Prints KEY=value lines on stdout (API-*, FILE-*; see the test,
tests/system/test_api_linux.py), then popek's stderr, the log file, the
metrics lines and the consoles. Exit status 0 when every step ran (the
test judges the values), 1 otherwise.
"""
import argparse
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import popek_guests  # noqa: E402
from vmmrun import Output, stop  # noqa: E402

MiB = 1 << 20
PAUSE_S = 25
FILE_TIMEOUT_S = 240
READY = "API-GUEST-READY"
GUEST_SCRIPT = """
echo "VDA-SHA=$(sha256sum /dev/vda | cut -d' ' -f1)"
echo "CPUS=$(grep -c ^processor /proc/cpuinfo)"
dd if=/dev/hwrng of=/dev/null bs=16 count=1 2>/dev/null
echo %s
i=0
while true; do
    i=$((i + 1))
    echo "TICK $i $(cat /sys/block/vda/size)"
    sleep 0.2
done
""" % READY
FILE_SCRIPT = """
t0=$(cut -d' ' -f1 /proc/uptime)
echo "VDA-SHA=$(sha256sum /dev/vda | cut -d' ' -f1)"
t1=$(cut -d' ' -f1 /proc/uptime)
echo "VDA-READ=$t0 $t1"
echo "CPUS=$(grep -c ^processor /proc/cpuinfo)"
"""
# The file phase's drive: 1 MiB per second, so reading its 4 MiB takes
# at least 3 s (a full bucket, then 3 MiB of refill).
FILE_DRIVE_LIMIT = {"bandwidth": {"size": MiB, "refill_time": 1000}}


def image_bytes(size, tag):
    block = hashlib.sha256(tag).digest() * 128          # 4 KiB
    return b"".join(i.to_bytes(4, "little") + block[4:] for i in range(size // 4096))


def say(key, value):
    print("%s=%s" % (key, value))
    sys.stdout.flush()


class Api:
    def __init__(self, sock):
        self.sock = str(sock)

    def __call__(self, method, path, body=None):
        """curl --unix-socket: (status, parsed JSON body or None)."""
        cmd = ["curl", "-sS", "-X", method, "--unix-socket", self.sock, "-m", "60",
               "-w", "\n%{http_code}", "http://localhost" + path]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        text, _, code = p.stdout.rpartition("\n")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = text
        status = int(code) if code.strip().isdigit() else 0
        print("curl %s %s -> %s %s" % (method, path, status, text.strip()[:200]))
        return status, parsed


def ticks(text):
    return [line.split() for line in text.splitlines() if line.startswith("TICK ")]


def wait_until(pred, deadline, step=0.2):
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def api_phase(args, work, deadline):
    sock, log, metrics = work / "api.sock", work / "popek.log", work / "metrics.json"
    small, big = work / "rootfs.img", work / "rootfs-big.img"
    small.write_bytes(image_bytes(4 * MiB, b"popek-api-rootfs"))
    big.write_bytes(image_bytes(8 * MiB, b"popek-api-rootfs-big"))
    say("API-ROOTFS-SHA", hashlib.sha256(small.read_bytes()).hexdigest())
    proc = subprocess.Popen([args.popek, "run", "--api-sock", str(sock)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = Output(proc.stdout), Output(proc.stderr)
    api = Api(sock)
    try:
        if not wait_until(sock.exists, time.monotonic() + 30):
            say("API-FAIL", "no API socket")
            return False
        steps = [
            ("PUT", "/logger", {"log_path": str(log), "level": "Info", "show_level": True}),
            ("PUT", "/metrics", {"metrics_path": str(metrics)}),
            ("PUT", "/boot-source", {"kernel_image_path": args.kernel,
                                     "initrd_path": args.initrd,
                                     "boot_args": popek_guests.script_cmdline(GUEST_SCRIPT)}),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(small),
                                       "is_root_device": False, "is_read_only": False}),
            ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 512}),
            ("PUT", "/actions", {"action_type": "InstanceStart"}),
        ]
        say("API-SETUP-STATUSES", ",".join(str(api(*s)[0]) for s in steps))
        say("API-STATE-RUNNING", api("GET", "/")[1])
        if not out.wait_for(READY, deadline):
            say("API-FAIL", "the guest did not print %s" % READY)
            return False
        if not wait_until(lambda: len(ticks(out.text)) >= 3, deadline):
            say("API-FAIL", "no TICK lines")
            return False

        # Pause: no guest output while paused; it comes back on resume.
        status, _ = api("PATCH", "/vm", {"state": "Paused"})
        say("API-PAUSE-STATUS", status)
        say("API-STATE-PAUSED", json.dumps(api("GET", "/")[1]))
        time.sleep(1)
        paused_at = len(ticks(out.text))
        # Longer than Linux's soft-lockup threshold (2 x watchdog_thresh =
        # 20 s): without KVM_KVMCLOCK_CTRL the guest would report its vCPUs
        # stuck once it runs again.
        time.sleep(PAUSE_S)
        say("API-TICKS-WHILE-PAUSED", len(ticks(out.text)) - paused_at)
        status, _ = api("PATCH", "/vm", {"state": "Resumed"})
        say("API-RESUME-STATUS", status)
        resumed = wait_until(lambda: len(ticks(out.text)) >= paused_at + 3, deadline)
        say("API-TICKS-AFTER-RESUME", int(resumed))
        time.sleep(2)           # the watchdog's next check
        say("API-SOFT-LOCKUP", int("soft lockup" in out.text))

        # A bigger backing file: the guest sees the new capacity.
        status, body = api("PATCH", "/drives/rootfs",
                           {"drive_id": "rootfs", "path_on_host": str(big)})
        say("API-PATCH-DRIVE-STATUS", status)
        if status != 204:
            say("API-PATCH-DRIVE-FAULT", body)
        want = str(8 * MiB // 512)
        grown = wait_until(lambda: any(t[2:] == [want] for t in ticks(out.text)),
                           min(deadline, time.monotonic() + 30))
        say("API-VDA-SECTORS-AFTER-PATCH", ticks(out.text)[-1][2] if ticks(out.text) else "")
        say("API-VDA-GREW", int(grown))

        status, _ = api("PUT", "/actions", {"action_type": "FlushMetrics"})
        say("API-FLUSH-STATUS", status)
        status, _ = api("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
        say("API-CAD-STATUS", status)
        try:
            proc.wait(max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        say("API-POPEK-STATUS", proc.returncode)
        return True
    finally:
        stop(proc)
        out.thread.join(5)
        err.thread.join(5)
        lines = [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []

        def total(group, name):
            return sum(l.get(group, {}).get(name, 0) for l in lines)
        say("API-METRICS-LINES", len(lines))
        for group, name in [("vcpu", "exits"), ("vcpu", "exit_io_out"), ("vcpu", "exit_mmio_write"),
                            ("vcpu0", "exits"), ("vcpu1", "exits"),
                            ("block_rootfs", "read_bytes"), ("block_rootfs", "read_count"),
                            ("block", "read_bytes"), ("entropy", "entropy_bytes"),
                            ("put_api_requests", "actions_count")]:
            say("API-METRIC-%s.%s" % (group, name), total(group, name))
        logtext = log.read_text(errors="replace") if log.exists() else ""
        say("API-LOG-STOPPED", int(any(":INFO] VM stopped: guest reset" in l
                                       for l in logtext.splitlines())))
        say("API-CONSOLE-RESTART", int("reboot: Restarting system" in out.text))
        for line in out.text.splitlines():
            if line.startswith(("VDA-SHA=", "CPUS=")):
                print("API-GUEST-" + line)
        print("--- api popek stderr\n%s" % err.text.strip()[-4000:])
        print("--- api log file\n%s" % logtext[-3000:])
        print("--- api metrics (last line)\n%s" % (json.dumps(lines[-1]) if lines else ""))
        print("--- api console\n%s" % out.text[-5000:])
        sys.stdout.flush()


def file_phase(args, work, deadline):
    disk = work / "rootfs.img"
    cfg = work / "vm.json"
    metrics = work / "file-metrics.json"
    cfg.write_text(json.dumps({
        "boot-source": {"kernel_image_path": args.kernel, "initrd_path": args.initrd,
                        "boot_args": popek_guests.script_cmdline(FILE_SCRIPT)},
        "drives": [{"drive_id": "rootfs", "path_on_host": str(disk), "is_root_device": False,
                    "is_read_only": True, "rate_limiter": FILE_DRIVE_LIMIT}],
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 512},
        "metrics": {"metrics_path": str(metrics)},
    }))
    p = subprocess.Popen([args.popek, "run", "--config-file", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                         errors="replace")
    t0 = time.monotonic()
    try:
        stdout, stderr = p.communicate(timeout=max(1, deadline - t0))
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
        say("FILE-FAIL", "popek --config-file did not exit within %.0f s" % (time.monotonic() - t0))
        print("--- file popek stderr\n%s" % stderr.strip()[-3000:])
        print("--- file console\n%s" % stdout[-5000:])
        return False
    say("FILE-POPEK-STATUS", p.returncode)
    say("FILE-SCRIPT-STATUS", popek_guests.script_status(stdout))
    say("FILE-SECONDS", "%.1f" % (time.monotonic() - t0))
    for line in stdout.splitlines():
        if line.startswith(("VDA-SHA=", "CPUS=", "VDA-READ=")):
            print("FILE-GUEST-" + line)
    lines = [json.loads(l) for l in metrics.read_text().splitlines()] if metrics.exists() else []
    say("FILE-METRIC-block_rootfs.rate_limiter_throttled_events",
        sum(l.get("block_rootfs", {}).get("rate_limiter_throttled_events", 0) for l in lines))
    say("FILE-METRIC-block_rootfs.read_bytes",
        sum(l.get("block_rootfs", {}).get("read_bytes", 0) for l in lines))
    print("--- file popek stderr\n%s" % stderr.strip()[-3000:])
    print("--- file console\n%s" % stdout[-3000:])
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--popek", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    deadline = time.monotonic() + args.timeout
    work = pathlib.Path(tempfile.mkdtemp(prefix="popek-api-"))
    try:
        ok = api_phase(args, work, deadline)
        # The file phase boots the first (4 MiB) image read-only, with a
        # time budget of its own.
        ok = file_phase(args, work, time.monotonic() + FILE_TIMEOUT_S) and ok
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
