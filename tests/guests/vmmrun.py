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
stopped on the condition.

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
import time


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
    try:
        while streams:
            now = time.monotonic()
            if now - start > timeout and not res.timed_out and not res.stopped:
                res.timed_out = True
                _kill(proc, signal.SIGKILL)
            if kill_at is not None and now > kill_at:
                _kill(proc, signal.SIGKILL)
                kill_at = None
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
        while True:
            try:
                proc.wait(timeout=max(0.1, timeout - (time.monotonic() - start)))
                break
            except subprocess.TimeoutExpired:
                res.timed_out = True
                _kill(proc, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            _kill(proc, signal.SIGKILL)
            proc.wait()
    res.wall = time.monotonic() - start
    if partial:
        res.lines.append((res.wall, partial.decode(errors="replace")))
    res.status = proc.returncode
    res.stdout = out.decode(errors="replace")
    res.stderr = err.decode(errors="replace")
    return res


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
