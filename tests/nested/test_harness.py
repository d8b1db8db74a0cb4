# SPDX-License-Identifier: GPL-2.0-only
"""Tests of the nested test harness itself (three L1 boots in all).

Run: /usr/bin/python3 -m pytest -v tests/nested/test_harness.py
Nothing here skips: a missing package, kernel or /dev/kvm is a failure.
"""

import os
import pathlib
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402

RUN_IN_L1 = HERE / "run-in-l1"


@pytest.fixture(scope="module")
def ready():
    return harness.ensure_ready()


def _processes_mentioning(text):
    """PIDs of processes whose command line contains text."""
    pids = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            pids.append(int(d.name))
    return pids


def test_parse_probe_output():
    info = harness.parse_probe_output(
        "ring0-loop: iterations=1000 ns-per-iteration=12.50 total-ns=1 "
        "overhead-ns=1\nring3-int: fail (shutdown (triple fault))\n")
    assert info["iterations"] == 1000
    assert info["ns_per_iteration"] == 12.5
    assert info["ring3_int_ok"] is False
    assert harness.parse_probe_output("ring3-int: ok\n")["ring3_int_ok"]


def test_cli_usage_error():
    r = subprocess.run([str(RUN_IN_L1), "--timeout", "5"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert r.returncode == 2
    assert "no command given" in r.stderr


def test_ready(ready):
    assert ready.initramfs.is_file()
    assert ready.vmlinuz.is_file()
    assert ready.qemu and os.access(ready.qemu, os.X_OK)
    # Cached: a second call builds nothing.
    assert harness.ensure_ready().initramfs == ready.initramfs


@pytest.mark.nested
def test_output_status_and_files(ready, tmp_path):
    """One boot: stdout, stderr, exit status, cwd, env and a file back."""
    workdir = tmp_path / "work dir"   # under /tmp: masked in L1, kept
    workdir.mkdir()
    (workdir / "input.txt").write_text("from the host\n")
    out = tmp_path / "out"
    script = (
        'echo hi; echo oops >&2; pwd; cat input.txt; '
        'echo "$GREETING"; '
        'echo payload > "$POPEK_NESTED_OUT/result.txt"; '
        'test -c /dev/kvm && echo kvm-present; '
        'touch /tmp/writable && echo tmp-writable; '
        'exit 3')
    r = harness.run(script, timeout=240, cwd=workdir, outdir=out,
                    env={"GREETING": "hello from env"})
    print("boot %.2f s, command %.2f s, round trip %.2f s"
          % (r.boot_seconds, r.command_seconds, r.elapsed))
    assert not r.timed_out
    assert r.returncode == 3, r.output
    assert r.stdout.splitlines() == [
        "hi", str(workdir), "from the host", "hello from env",
        "kvm-present", "tmp-writable"], r.output
    assert r.stderr == "oops\n"
    assert r.outdir == out.resolve()
    assert (out / "result.txt").read_text() == "payload\n"
    assert 0 < r.boot_seconds < r.elapsed
    assert r.command_seconds is not None and r.command_seconds >= 0
    assert not _processes_mentioning(str(out))


@pytest.mark.nested
def test_l1_kvm_is_faithful_and_faster(ready):
    """One boot: kvm-probe in L1 against kvm-probe on the host."""
    probe = harness.kvm_probe_path()
    host = harness.probe_host()
    r = harness.run([str(probe)], timeout=300, keep_paths=[probe])
    assert r.returncode == 0, r.output
    l1 = harness.parse_probe_output(r.stdout)
    print("host: %s" % host["output"].strip())
    print("L1:   %s" % r.stdout.strip())
    print("boot %.2f s, round trip %.2f s" % (r.boot_seconds, r.elapsed))
    assert l1["ns_per_iteration"] is not None, r.output
    # L1's KVM passes the same test host_kvm_is_faithful() applies.
    assert l1["ring3_int_ok"], r.output
    assert l1["ns_per_iteration"] < harness.FAITHFUL_MAX_NS_PER_ITERATION
    host_faithful = (host["ns_per_iteration"] <
                     harness.FAITHFUL_MAX_NS_PER_ITERATION and
                     host["ring3_int_ok"])
    assert harness.host_kvm_is_faithful() == host_faithful or \
        os.environ.get("POPEK_HOST_KVM_FAITHFUL") in ("0", "1")
    if not host_faithful:
        # The point of the harness: ring 0 in L1 beats the host's KVM.
        assert l1["ns_per_iteration"] * 20 <= host["ns_per_iteration"], (
            host["output"], r.stdout)


@pytest.mark.nested
def test_timeout_kills_l1(ready, tmp_path):
    """One boot: a hanging command is killed at the timeout via the CLI."""
    out = tmp_path / "timeout-out"
    timeout = 20
    start = time.monotonic()
    r = subprocess.run(
        [str(RUN_IN_L1), "--timeout", str(timeout), "--out", str(out),
         "--", "sh", "-c", "echo started; exec sleep 1000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=timeout + 60)
    took = time.monotonic() - start
    assert r.returncode == harness.TIMEOUT_STATUS, (r.stdout, r.stderr)
    assert "nested: command timed out after %d s" % timeout in r.stderr
    assert timeout <= took < timeout + 15
    # Output produced before the timeout still comes back: all the command
    # wrote to the share, and "started" if the command began well before
    # the kill (under heavy load L1 may not even have finished booting).
    written = (out / ".nested" / "stdout")
    assert r.stdout == (written.read_text() if written.exists() else "")
    marker = out / ".nested" / "started"
    if marker.exists() and marker.stat().st_mtime < time.time() - 5:
        assert "started" in r.stdout, (r.stdout, r.stderr)
    time.sleep(0.5)
    assert not _processes_mentioning(str(out)), "QEMU left behind"
