#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
"""An interactive session with the Linux test guest on a pty.

    interact.py [--timeout S] -- VMM ARGS...

Starts VMM ARGS (popek or QEMU booting the test guest with
popek.test=shell) with its stdin and stdout on a pty, as a user's terminal
would be; waits for the guest shell's `popek# ` prompt; types
`echo $((6*7)); cat /proc/cpuinfo | grep -c ^processor`; reads 42 and the
CPU count; types `poweroff -f` and waits for the VMM to exit.

Prints one line `INTERACT answer=<n> cpus=<n> status=<vmm status>
prompt-seconds=<s> total-seconds=<s>` on success and exits 0; on failure
prints `INTERACT-FAIL <why>` and exits 1. Either way the session
transcript follows, between `--- transcript` and `--- end`, and the VMM's
stderr after `--- stderr`.
"""
import argparse
import os
import pty
import re
import select
import signal
import subprocess
import sys
import termios
import time

PROMPT = b"popek# "
QUESTION = b"echo $((6*7)); cat /proc/cpuinfo | grep -c ^processor\r"
# The pty may add a \r to the guest's \r\n (OPOST/ONLCR left on by the VMM).
ANSWER_RE = re.compile(rb"\n(\d+)\r*\n(\d+)\r*\n")


class Failed(Exception):
    pass


class Session:
    def __init__(self, argv):
        self.master, self.slave = pty.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.stderr_path = "/tmp/interact-stderr.%d" % os.getpid()
        self.errf = open(self.stderr_path, "w+b")
        self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave,
                                     stderr=self.errf, start_new_session=True)
        self.buf = b""
        self.start = time.monotonic()

    def read_some(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if r:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                data = b""
            if data:
                self.buf += data
                return True
        return False

    def expect(self, pattern, since, deadline, what):
        """Waits for pattern (bytes or compiled regex) in buf[since:]."""
        while True:
            part = self.buf[since:]
            m = pattern.search(part) if hasattr(pattern, "search") else (
                part.find(pattern) >= 0 or None)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed("timed out waiting for %s" % what)
            if not self.read_some(min(left, 0.5)) and self.proc.poll() is not None:
                # Drain what is left, then give up.
                while self.read_some(0.1):
                    pass
                part = self.buf[since:]
                m = pattern.search(part) if hasattr(pattern, "search") else (
                    part.find(pattern) >= 0 or None)
                if m:
                    return m
                raise Failed("the VMM exited with status %s while waiting for %s"
                             % (self.proc.returncode, what))

    def type(self, data):
        for i in range(0, len(data), 16):
            os.write(self.master, data[i:i + 16])
            time.sleep(0.01)

    def wait(self, deadline):
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise Failed("the VMM did not exit after poweroff -f")
            self.read_some(0.2)
        while self.read_some(0.1):
            pass
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)
        self.errf.seek(0)
        err = self.errf.read().decode(errors="replace")
        self.errf.close()
        os.unlink(self.stderr_path)
        return err


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--timeout", type=float, default=180,
                    help="seconds for the whole session (default 180)")
    ap.add_argument("argv", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("no VMM command")
    deadline = time.monotonic() + args.timeout
    s = Session(argv)
    ok, line = False, ""
    try:
        s.expect(PROMPT, 0, deadline, "the shell prompt %r" % PROMPT.decode())
        prompt_at = time.monotonic() - s.start
        since = len(s.buf)
        s.type(QUESTION)
        m = s.expect(ANSWER_RE, since, deadline, "42 and the CPU count")
        answer, cpus = int(m.group(1)), int(m.group(2))
        s.expect(PROMPT, since + m.end(), deadline, "the prompt after the answer")
        s.type(b"poweroff -f\r")
        status = s.wait(deadline)
        line = ("INTERACT answer=%d cpus=%d status=%d prompt-seconds=%.2f "
                "total-seconds=%.2f" % (answer, cpus, status, prompt_at,
                                        time.monotonic() - s.start))
        ok = True
    except Failed as e:
        line = "INTERACT-FAIL %s" % e
    err = s.close()
    print(line)
    print("--- transcript")
    print(s.buf.decode(errors="replace").replace("\r\n", "\n"))
    print("--- end")
    print("--- stderr")
    print(err)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
