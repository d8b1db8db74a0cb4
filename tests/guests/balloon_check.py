#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Checks that inflating popek's virtio-balloon gives guest memory back to
the host (run where KVM is faithful, e.g. in the nested harness's L1).

    balloon_check.py --popek P --kernel K --initrd I [--memory-mib 512]
                     [--touch-mib 192] [--target-mib 160] [--timeout 240]

Boots the test guest (tests/guests/popek_guests.py) in exec mode under
`popek --config-file CFG --api-sock SOCK` (with --api-sock, popek boots at
once only from a configuration file, which also declares the balloon with
a statistics interval). The guest fills and frees --touch-mib of tmpfs,
prints POPEK-BALLOON-TOUCHED and sleeps. Then this script reads popek's
VmRSS, PATCHes /balloon to --target-mib, polls GET /balloon/statistics
until actual_mib is within 4 MiB of the target (or a timeout), reads VmRSS
again and prints one line on stdout:

    BALLOON rss-before-kib=N rss-after-kib=N target-mib=N actual-mib=N
            inflate-seconds=S

(or BALLOON-FAIL why), followed by popek's stderr and the console. popek
is stopped with SIGTERM at the end. Exit status 0 when the balloon reached
its target, 1 otherwise.
"""
import argparse
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import popek_guests  # noqa: E402
from vmmrun import Output, stop  # noqa: E402

TOUCHED = "POPEK-BALLOON-TOUCHED"


def http(sock_path, method, path, body=None, timeout=10):
    """One HTTP/1.1 request on the Unix socket: (status, body text)."""
    data = json.dumps(body).encode() if body is not None else b""
    req = ("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           "Accept: application/json\r\n" % (method, path))
    if body is not None:
        req += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
    req = req.encode() + b"\r\n" + data
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(req)
        resp = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp.extend(chunk)
    finally:
        s.close()
    head, _, rest = bytes(resp).partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, pos = bytearray(), 0
        while True:
            eol = rest.index(b"\r\n", pos)
            n = int(rest[pos:eol].split(b";")[0], 16)
            if n == 0:
                break
            out.extend(rest[eol + 2:eol + 2 + n])
            pos = eol + 2 + n + 2
        rest = bytes(out)
    return status, rest.decode(errors="replace")


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--popek", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--memory-mib", type=int, default=512)
    ap.add_argument("--touch-mib", type=int, default=192)
    ap.add_argument("--target-mib", type=int, default=160)
    ap.add_argument("--timeout", type=float, default=240)
    args = ap.parse_args()
    start = time.monotonic()
    deadline = start + args.timeout

    work = pathlib.Path(tempfile.mkdtemp(prefix="popek-balloon-"))
    sock = work / "api.sock"
    script = ("dd if=/dev/zero of=/tmp/fill bs=1M count=%d 2>&1 | tail -n 1\n"
              "sync\nrm /tmp/fill\necho %s\nsleep 600\n" % (args.touch_mib, TOUCHED))
    config = {
        "boot-source": {"kernel_image_path": args.kernel, "initrd_path": args.initrd,
                        "boot_args": popek_guests.script_cmdline(script)},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": args.memory_mib},
        "balloon": {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1},
    }
    cfg = work / "vm.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.Popen([args.popek, "run", "--config-file", str(cfg), "--api-sock", str(sock)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = Output(proc.stdout), Output(proc.stderr)
    ok = False
    try:
        if not out.wait_for(TOUCHED, deadline):
            print("BALLOON-FAIL the guest did not print %s (popek %s)"
                  % (TOUCHED, "exited %s" % proc.poll() if proc.poll() is not None
                     else "still running"))
            return 1
        time.sleep(1)
        before = vm_rss_kib(proc.pid)
        status, body = http(str(sock), "PATCH", "/balloon", {"amount_mib": args.target_mib})
        if status != 204:
            print("BALLOON-FAIL PATCH /balloon: %d %s" % (status, body))
            return 1
        t0 = time.monotonic()
        actual, stats = None, {}
        while time.monotonic() < deadline:
            status, body = http(str(sock), "GET", "/balloon/statistics")
            if status == 200:
                stats = json.loads(body)
                actual = stats.get("actual_mib")
                if actual is not None and abs(actual - args.target_mib) <= 4:
                    break
            else:
                print("GET /balloon/statistics: %d %s" % (status, body.strip()))
            time.sleep(0.5)
        inflate = time.monotonic() - t0
        time.sleep(1)
        after = vm_rss_kib(proc.pid)
        print("BALLOON rss-before-kib=%d rss-after-kib=%d target-mib=%d actual-mib=%s "
              "inflate-seconds=%.1f" % (before, after, args.target_mib, actual, inflate))
        print("BALLOON-STATS %s" % json.dumps(stats, sort_keys=True))
        ok = actual is not None and abs(actual - args.target_mib) <= 4
        if not ok:
            print("BALLOON-FAIL actual_mib %s did not reach %d within the timeout"
                  % (actual, args.target_mib))
        return 0 if ok else 1
    finally:
        stop(proc)
        out.thread.join(5)
        err.thread.join(5)
        print("BALLOON-POPEK-STATUS=%s" % proc.returncode)
        print("--- popek stderr\n%s" % err.text.strip())
        print("--- console\n%s" % out.text[-6000:])
        sys.stdout.flush()
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    sys.exit(main())
