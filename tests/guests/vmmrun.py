#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""Run a VMM (popek or QEMU) booting a test guest, timestamp its console
lines, and stop it on a condition.

    vmmrun.py [--timeout S] [--stop-after REGEX [--count N]] -- VMM ARGS...

Copies the VMM's stdout (the guest console) and stderr through, then
prints one line on stderr:

    VMMRUN status=<VMM status> stopped=<0|1> timed-out=<0|1> wall=<s>
           matches=<n>

stopped=1: REGEX had matched N times (default 1) and the VMM was sent
SIGTERM (SIGKILL 5 s later). On timeout (default 120 s) the VMM is killed
with SIGKILL. Exit status: the VMM's, or 124 on timeout, or 0 when it was
stopped on the condition. A VMM that SIGKILL does not end within
UNKILLABLE_S (stuck in the kernel, or its output held open by a process
that escaped its group) is left behind: vmmrun reports where its threads
wait (/proc/PID/task/*/wchan and stack) on stderr and returns, so that a
test fails with a diagnosis instead of hanging.

As a module (bench/linux-boot uses it): run(argv, timeout, stop_after,
count) -> Run with .status .stdout .stderr .lines [(seconds, text)]
.wall .stopped .timed_out .first(regex) (seconds when a line first
matched, or None).
"""
import argparse
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

# How long a SIGKILLed VMM may take to go before vmmrun gives up on it.
UNKILLABLE_S = 30.0


class Run:
    def __init__(self):
        self.status = None
        self.stdout = ""
        self.stderr = ""
        self.lines = []
        self.wall = None
        self.stopped = False
        self.timed_out = False
        self.matches = 0

    def first(self, regex):
        r = re.compile(regex)
        for t, line in self.lines:
            if r.search(line):
                return t
        return None


def _kill(proc, sig):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()
    except OSError as e:
        return "(%s)" % e.strerror


def stuck_report(pid):
    """Where a process that outlives SIGKILL waits: state, wchan and kernel
    stack of each of its threads, and who else holds its output pipes."""
    lines = ["vmmrun: gave up on pid %d %.0f s after SIGKILL" % (pid, UNKILLABLE_S)]
    try:
        tids = sorted(os.listdir("/proc/%d/task" % pid), key=int)
    except OSError:
        tids = []
        lines.append("vmmrun: pid %d is gone; its output is held open by another process" % pid)
    for tid in tids:
        base = "/proc/%d/task/%s/" % (pid, tid)
        state = [ln for ln in _read(base + "status").splitlines() if ln.startswith("State:")]
        lines.append("vmmrun: thread %s (%s) %s wchan=%s" % (
            tid, _read(base + "comm"), state[0] if state else "?", _read(base + "wchan")))
        for ln in _read(base + "stack").splitlines()[:12]:
            lines.append("vmmrun:     " + ln)
    return "\n".join(lines) + "\n"


def run(argv, timeout=120.0, stop_after=None, count=1, echo=False):
    res = Run()
    pattern = re.compile(stop_after) if stop_after else None
    start = time.monotonic()
    try:
        proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        res.status, res.wall = 127, time.monotonic() - start
        res.stderr = "vmmrun: cannot run %s: %s\n" % (argv[0], e)
        if echo:
            sys.stderr.write(res.stderr)
        return res
    out, err, partial = bytearray(), bytearray(), bytearray()
    streams = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    kill_at = None
    killed_at = None            # when SIGKILL was sent
    stuck = False
    try:
        while streams:
            now = time.monotonic()
            if now - start > timeout and not res.timed_out and not res.stopped:
                res.timed_out = True
                _kill(proc, signal.SIGKILL)
                killed_at = now
            if kill_at is not None and now > kill_at:
                _kill(proc, signal.SIGKILL)
                kill_at = None
                killed_at = now
            if killed_at is not None and now - killed_at > UNKILLABLE_S:
                stuck = True
                break
            ready, _, _ = select.select(list(streams), [], [], 0.2)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    del streams[fd]
                    continue
                streams[fd].extend(data)
                if echo:
                    stream = sys.stdout if fd == proc.stdout.fileno() else sys.stderr
                    stream.buffer.write(data)
                    stream.flush()
                if fd != proc.stdout.fileno():
                    continue
                t = time.monotonic() - start
                partial.extend(data)
                while b"\n" in partial:
                    line, _, rest = bytes(partial).partition(b"\n")
                    partial[:] = rest
                    text = line.decode(errors="replace").rstrip("\r")
                    res.lines.append((t, text))
                    if pattern and pattern.search(text):
                        res.matches += 1
                        if res.matches >= count and not res.stopped:
                            res.stopped = True
                            _kill(proc, signal.SIGTERM)
                            kill_at = time.monotonic() + 5
        while not stuck:
            try:
                proc.wait(timeout=max(0.1, timeout - (time.monotonic() - start)))
                break
            except subprocess.TimeoutExpired:
                res.timed_out = True
                _kill(proc, signal.SIGKILL)
                try:
                    proc.wait(timeout=UNKILLABLE_S)
                    break
                except subprocess.TimeoutExpired:
                    stuck = True
    finally:
        if proc.poll() is None:
            _kill(proc, signal.SIGKILL)
            try:
                proc.wait(timeout=UNKILLABLE_S if not stuck else 1)
            except subprocess.TimeoutExpired:
                stuck = True
    if stuck:
        report = stuck_report(proc.pid)
        err.extend(report.encode())
        if echo:
            sys.stderr.write(report)
        res.timed_out = True
    res.wall = time.monotonic() - start
    if partial:
        res.lines.append((res.wall, partial.decode(errors="replace")))
    res.status = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    res.stdout = out.decode(errors="replace")
    res.stderr = err.decode(errors="replace")
    return res


class Output:
    """Collects a stream in a thread; wait_for(text) waits for a line."""

    def __init__(self, stream):
        self.text = ""
        self.cond = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for raw in iter(lambda: stream.readline(), b""):
            with self.cond:
                self.text += raw.decode(errors="replace")
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, needle, deadline):
        with self.cond:
            while needle not in self.text and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1.0))
            return needle in self.text


def stop(proc, grace=10):
    """SIGTERM, then SIGKILL after grace seconds; waits for the process."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--stop-after")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no VMM command")
    r = run(argv, args.timeout, args.stop_after, args.count, echo=True)
    sys.stderr.write("VMMRUN status=%s stopped=%d timed-out=%d wall=%.2f matches=%d\n" % (
        r.status, r.stopped, r.timed_out, r.wall, r.matches))
    if r.timed_out:
        return 124
    if r.stopped:
        return 0
    return r.status if r.status >= 0 else 128 - r.status


if __name__ == "__main__":
    sys.exit(main())
