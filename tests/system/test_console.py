"""The serial console on a real terminal (a pty): raw mode while the VM
runs, input reaches the guest, Ctrl-A x quits, and the terminal is restored
on every exit path."""
import os
import pty
import select
import signal
import subprocess
import termios
import time

import pytest

pytestmark = pytest.mark.direct


class Tty:
    def __init__(self, popek, cmdline):
        self.master, self.slave = pty.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[3] |= termios.ICANON | termios.ECHO | termios.ISIG
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        self.cooked = termios.tcgetattr(self.slave)
        self.proc = subprocess.Popen([str(popek), "run", "--cmdline", cmdline],
                                     stdin=self.slave, stdout=self.slave,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.buf = b""

    def expect(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.buf:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; got {self.buf!r}"
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    self.buf += os.read(self.master, 4096)
                except OSError:
                    break
        assert text.encode() in self.buf, self.buf

    def type(self, data):
        os.write(self.master, data)

    def lflag(self):
        return termios.tcgetattr(self.slave)[3]

    def finish(self, timeout=20):
        rc = self.proc.wait(timeout=timeout)
        err = self.proc.stderr.read().decode(errors="replace")
        return rc, err

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def tty(popek, kvm):
    made = []

    def start(cmdline="echo quiet"):
        t = Tty(popek, cmdline)
        made.append(t)
        return t
    yield start
    for t in made:
        t.close()


def test_interactive_session(tty):
    t = tty()
    t.expect("popek-guest: echo: ready")
    assert not t.lflag() & (termios.ICANON | termios.ECHO), "terminal not in raw mode"
    t.type(b"hello popek\r")
    t.expect("popek-guest: echo: hello popek")
    t.type(b"exit\r")
    t.expect("popek-guest: done")
    rc, err = t.finish()
    assert rc == 0, err
    assert termios.tcgetattr(t.slave) == t.cooked, "terminal not restored"


def test_ctrl_a_x_quits(tty):
    t = tty()
    t.expect("popek-guest: echo: ready")
    # Ctrl-A Ctrl-A sends one Ctrl-A to the guest; Ctrl-A x quits.
    t.type(b"a\x01\x01b\r")
    t.expect("popek-guest: echo: a\x01b")
    t.type(b"\x01x")
    rc, err = t.finish()
    assert rc == 0, err
    assert termios.tcgetattr(t.slave) == t.cooked, "terminal not restored"


def test_sigterm_restores_terminal(tty):
    t = tty()
    t.expect("popek-guest: echo: ready")
    t.proc.send_signal(signal.SIGTERM)
    rc, err = t.finish()
    assert rc == 8, (rc, err)
    assert termios.tcgetattr(t.slave) == t.cooked, "terminal not restored"


def test_triple_fault_restores_terminal(tty):
    t = tty("fault=triple quiet")
    rc, err = t.finish()
    assert rc == 6, (rc, err)
    assert termios.tcgetattr(t.slave) == t.cooked, "terminal not restored"


def test_piped_input_reaches_guest(popek, kvm):
    # Not a terminal: no raw mode, no escape; bytes go through untouched.
    p = subprocess.Popen([str(popek), "run", "--cmdline", "echo quiet"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Wait for the prompt so the guest's FIFO reset cannot drop the input.
    line = p.stdout.readline()
    assert b"echo: ready" in line, line
    out, err = p.communicate(b"x\x01y\nexit\n", timeout=20)
    assert p.returncode == 0, err
    assert b"popek-guest: echo: x\x01y" in out
