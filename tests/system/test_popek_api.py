"""popek's own Firecracker-compatible API (popek run --api-sock), driven
with Debian's curl, booting the built-in guest on this host's /dev/kvm."""
import fcntl
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

pytestmark = pytest.mark.direct


class Popek:
    """popek run --api-sock SOCK [args]; stdout/stderr collected."""

    def __init__(self, popek, tmp_path, *args):
        self.sock = tmp_path / "api.sock"
        self.proc = subprocess.Popen([str(popek), "run", "--api-sock", str(self.sock), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while not self.sock.exists():
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < deadline, "API socket never appeared"
            time.sleep(0.02)

    def _read(self):
        for line in self.proc.stdout:
            self.out.append(line.rstrip("\n"))

    def wait_out(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while not any(text in l for l in self.out):
            assert time.monotonic() < deadline, f"no {text!r} in {self.out}"
            time.sleep(0.02)

    def curl(self, method, path, body=None):
        cmd = ["curl", "-s", "-X", method, "--unix-socket", str(self.sock),
               "-w", "\n%{http_code}", f"http://localhost{path}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json",
                    "-d", body if isinstance(body, str) else json.dumps(body)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), (json.loads(text) if text.strip() else None)

    def boot(self, guest_dir, args="echo quiet"):
        """PUT /boot-source with the built-in guest, InstanceStart, and
        wait for its echo prompt."""
        assert self.curl("PUT", "/boot-source", boot_source(guest_dir, args))[0] == 204
        assert self.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
        self.wait_out("popek-guest: echo: ready")

    def guest_exit(self):
        """Has the built-in guest end the run; popek's status."""
        self.proc.stdin.write("exit\n")
        self.proc.stdin.flush()
        return self.proc.wait(timeout=20)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.proc.returncode


@pytest.fixture
def api(popek, kvm, tmp_path):
    made = []

    def start(*args):
        p = Popek(popek, tmp_path, *args)
        made.append(p)
        return p
    yield start
    for p in made:
        p.stop()


def boot_source(guest_dir, args="echo quiet"):
    return {"kernel_image_path": str(guest_dir / "popek-guest.elf"), "boot_args": args}


def test_getting_started_sequence(api, guest_dir):
    a = api()
    assert a.curl("GET", "/")[1]["state"] == "Not started"
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir, "echo"))[0] == 204
    assert a.curl("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128})[0] == 204
    code, body = a.curl("GET", "/machine-config")
    assert code == 200 and body["vcpu_count"] == 2 and body["mem_size_mib"] == 128
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")
    assert "popek-guest: cpus=2 online=2" in a.out
    assert a.curl("GET", "/")[1]["state"] == "Running"
    # Pre-boot-only requests after boot: Firecracker's 400.
    code, body = a.curl("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
    assert code == 400 and "after starting the microVM" in body["fault_message"]
    code, body = a.curl("PUT", "/actions", {"action_type": "InstanceStart"})
    assert code == 400
    # The guest ends the run: popek exits with its status.
    assert a.guest_exit() == 0


def test_failed_start_keeps_waiting(api, guest_dir, tmp_path):
    a = api()
    a.curl("PUT", "/boot-source", {"kernel_image_path": str(tmp_path / "missing")})
    code, body = a.curl("PUT", "/actions", {"action_type": "InstanceStart"})
    assert code == 400 and "missing" in body["fault_message"], body
    assert a.curl("GET", "/")[1]["state"] == "Not started"
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir))[0] == 204
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")


def test_config_file_boots(api, guest_dir, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({
        "boot-source": boot_source(guest_dir),
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
        "balloon": {"amount_mib": 0, "deflate_on_oom": True, "stats_polling_interval_s": 1},
    }))
    a = api("--config-file", str(cfg))
    a.wait_out("popek-guest: echo: ready")
    assert a.curl("GET", "/")[1]["state"] == "Running"
    code, body = a.curl("GET", "/vm/config")
    assert code == 200 and body["machine-config"]["mem_size_mib"] == 64
    assert a.curl("PATCH", "/balloon", {"amount_mib": 16})[0] == 204
    code, body = a.curl("GET", "/balloon/statistics")
    assert code == 200 and body["target_mib"] == 16, body
    code, body = a.curl("PATCH", "/balloon", {"amount_mib": 1 << 20})
    assert code == 400 and body["fault_message"]


def test_config_file_without_api(popek, kvm, guest_dir, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": boot_source(guest_dir, "quiet"),
                               "machine-config": {"vcpu_count": 2, "mem_size_mib": 128}}))
    p = subprocess.run([str(popek), "run", "--config-file", str(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert "popek-guest: done" in p.stdout


def test_config_file_logger_and_metrics_without_api(popek, kvm, guest_dir, tmp_path):
    """Without an API socket popek itself writes the log file and the
    metrics lines the configuration file asks for."""
    cfg, log, m = tmp_path / "vm.json", tmp_path / "popek.log", tmp_path / "metrics.json"
    base = {"boot-source": boot_source(guest_dir, "quiet"),
            "machine-config": {"vcpu_count": 2, "mem_size_mib": 128}}
    cfg.write_text(json.dumps({**base, "logger": {"log_path": str(log), "level": "Info"},
                               "metrics": {"metrics_path": str(m)}}))
    p = subprocess.run([str(popek), "run", "--config-file", str(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert "] VM stopped: " in log.read_text()
    lines = metrics_lines(m)
    assert lines and total(lines, "vcpu", "exits") > 0, lines
    assert total(lines, "vcpu", "exits") == total(lines, "vcpu0", "exits") + \
        total(lines, "vcpu1", "exits")
    cfg.write_text(json.dumps({**base, "metrics": {"metrics_path": str(tmp_path / "no" / "m")}}))
    p = subprocess.run([str(popek), "run", "--config-file", str(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "Cannot initialize the metrics system" in p.stderr, p.stderr
    assert "popek-guest" not in p.stdout


def test_config_file_errors(popek, tmp_path):
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"boot-source": {"kernel_image_path": "/k", "bogus": 1}}')
    p = subprocess.run([str(popek), "run", "--config-file", str(cfg)], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and '"bogus"' in p.stderr, p.stderr
    p = subprocess.run([str(popek), "run", "--config-file", str(cfg), "--kernel", "/k"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--config-file describes the VM" in p.stderr


def test_vm_survives_bad_request_burst(api, guest_dir):
    a = api()
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir))[0] == 204
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")
    bad = [("PUT", "/machine-config", "{not json"), ("PUT", "/drives/x", {"bogus": 1}),
           ("GET", "/nowhere", None), ("PUT", "/snapshot/create", {}),
           ("PATCH", "/vm", {"state": "Sleeping"}), ("PUT", "/actions", {"action_type": "Nope"})]

    def client(i):
        for j in range(10):
            m, path, body = bad[(i + j) % len(bad)]
            code, _ = a.curl(m, path, body)
            assert 400 <= code < 500

    threads = [threading.Thread(target=client, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.proc.poll() is None
    assert a.curl("GET", "/")[1]["state"] == "Running"


def test_api_socket_in_use(api, popek, tmp_path):
    a = api()
    p = subprocess.run([str(popek), "run", "--api-sock", str(a.sock)], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "in use" in p.stderr, p.stderr


def test_pause_resume(api, guest_dir):
    a = api()
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir))[0] == 204
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")
    assert a.curl("PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert a.curl("GET", "/")[1]["state"] == "Paused"
    code, body = a.curl("PATCH", "/vm", {"state": "Paused"})
    assert code == 400 and body["fault_message"]
    # Input typed while paused is answered once the vCPUs run again.
    a.proc.stdin.write("while-paused\n")
    a.proc.stdin.flush()
    time.sleep(0.3)
    assert not any("echo: while-paused" in l for l in a.out)
    assert a.curl("PATCH", "/vm", {"state": "Resumed"})[0] == 204
    assert a.curl("GET", "/")[1]["state"] == "Running"
    a.wait_out("popek-guest: echo: while-paused")
    # A paused VM can still be stopped.
    assert a.curl("PATCH", "/vm", {"state": "Paused"})[0] == 204
    assert a.stop() == 8


def metrics_lines(path):
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def total(lines, group, name):
    return sum(l.get(group, {}).get(name, 0) for l in lines)


def test_metrics_count_exits_and_devices(api, guest_dir, tmp_path):
    """VM exits by reason and by vCPU, and per-device groups, in the
    metrics lines; over all lines, each vCPU's exits add up to what popek
    itself counted (its -v -v log line when the VM stops)."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (1 << 20))
    m = tmp_path / "metrics.json"
    a = api("-v", "-v")
    assert a.curl("PUT", "/metrics", {"metrics_path": str(m)})[0] == 204
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir, "echo"))[0] == 204
    assert a.curl("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128})[0] == 204
    assert a.curl("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": str(disk),
                                             "is_root_device": True,
                                             "is_read_only": False})[0] == 204
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")
    for i in range(5):
        a.proc.stdin.write(f"line{i}\n")
    a.proc.stdin.flush()
    a.wait_out("popek-guest: echo: line4")
    assert a.curl("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
    line = metrics_lines(m)[-1]
    assert line["vcpu"]["exits"] > 0 and line["vcpu"]["exit_io_out"] > 0, line["vcpu"]
    assert line["vcpu"]["exits"] == sum(v for k, v in line["vcpu"].items() if k != "exits")
    assert line["vcpu0"]["exits"] > 0 and line["vcpu1"]["exits"] > 0
    assert line["vcpu"]["exits"] == line["vcpu0"]["exits"] + line["vcpu1"]["exits"]
    # The built-in guest does not drive virtio-blk: the drive's group is
    # there, named after its id, with nothing counted.
    assert line["block_rootfs"]["read_count"] == 0 and line["block"]["write_bytes"] == 0
    assert "entropy_bytes" in line["entropy"]
    # Counters are per period: a second flush shows only the new exits.
    assert a.curl("PUT", "/actions", {"action_type": "FlushMetrics"})[0] == 204
    second = metrics_lines(m)[-1]
    assert second["vcpu"]["exits"] < line["vcpu"]["exits"]
    assert a.guest_exit() == 0
    lines = metrics_lines(m)
    err = a.proc.stderr.read()
    for cpu in (0, 1):
        logged = [l for l in err.splitlines() if f"debug: vCPU {cpu}: " in l]
        assert logged, err
        exits = int(logged[-1].split(f"vCPU {cpu}: ")[1].split()[0])
        assert total(lines, f"vcpu{cpu}", "exits") == exits, (logged, lines)
    assert total(lines, "vcpu", "exits") == total(lines, "vcpu0", "exits") + \
        total(lines, "vcpu1", "exits")


def test_logger_writes_levelled_lines(api, guest_dir, tmp_path):
    log = tmp_path / "popek.log"
    a = api()
    code, body = a.curl("PUT", "/logger", {"log_path": str(tmp_path / "no" / "x.log")})
    assert code == 400 and "Cannot initialize the logger" in body["fault_message"] and \
        "No such file or directory" in body["fault_message"], body
    assert a.curl("PUT", "/logger", {"log_path": str(log), "level": "Info",
                                      "show_level": True, "show_log_origin": True})[0] == 204
    a.boot(guest_dir)
    assert a.guest_exit() == 0
    lines = log.read_text().splitlines()
    stopped = [l for l in lines if l.endswith("] VM stopped: guest reset, exiting")]
    assert stopped, lines
    # Firecracker's shape: time [instance:thread:LEVEL:origin] message.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9} \[anonymous-instance:[^:\]]+"
                        r":INFO:vmm/builder\.c:\d+\] VM stopped: guest reset, exiting",
                        stopped[0]), stopped[0]
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    assert not any(":DEBUG:" in l for l in lines)


def test_logger_fifo_and_off(api, guest_dir, tmp_path):
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    # No reader on the pipe: popek neither blocks nor fails.
    a = api()
    assert a.curl("PUT", "/logger", {"log_path": str(fifo), "level": "Debug"})[0] == 204
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        a.boot(guest_dir)
        assert a.guest_exit() == 0
        text = os.read(reader, 1 << 20).decode()
    finally:
        os.close(reader)
    assert "VM stopped: guest reset" in text and "exit status 0" in text, text
    off = tmp_path / "off.log"
    b = api()
    assert b.curl("PUT", "/logger", {"log_path": str(off), "level": "Off"})[0] == 204
    b.boot(guest_dir)
    assert b.guest_exit() == 0
    assert off.exists() and off.read_text() == ""


def test_patch_drive_after_start(api, guest_dir, tmp_path):
    small, big = tmp_path / "small.img", tmp_path / "big.img"
    small.write_bytes(b"\1" * (1 << 20))
    big.write_bytes(b"\2" * (4 << 20))
    a = api()
    drive = {"drive_id": "rootfs", "path_on_host": str(small), "is_root_device": False,
             "is_read_only": False}
    assert a.curl("PUT", "/boot-source", boot_source(guest_dir))[0] == 204
    assert a.curl("PUT", "/drives/rootfs", drive)[0] == 204
    assert a.curl("PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204
    a.wait_out("popek-guest: echo: ready")
    code, body = a.curl("PATCH", "/drives/rootfs",
                        {"drive_id": "rootfs", "path_on_host": str(tmp_path / "missing.img")})
    assert code == 400 and "missing.img" in body["fault_message"], body
    code, body = a.curl("PATCH", "/drives/other", {"drive_id": "other",
                                                   "path_on_host": str(big)})
    assert code == 400 and body["fault_message"], body
    assert a.curl("PATCH", "/drives/rootfs", {"drive_id": "rootfs",
                                              "path_on_host": str(big)})[0] == 204
    assert a.curl("GET", "/vm/config")[1]["drives"][0]["path_on_host"] == str(big)
    # The new file is locked now, the old one free again.
    with open(small, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(big, "r+b") as f:
        with pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # A rate limiter only: the running device takes it (enforcement is
    # tested in test_api_linux.py and the unit tests); then an ops bucket
    # joins the bandwidth one.
    assert a.curl("PATCH", "/drives/rootfs", {
        "drive_id": "rootfs",
        "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})[0] == 204
    assert a.curl("PATCH", "/drives/rootfs", {
        "drive_id": "rootfs", "rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}})[0] == 204
    limiter = a.curl("GET", "/vm/config")[1]["drives"][0]["rate_limiter"]
    assert limiter["bandwidth"]["size"] == 1000 and limiter["ops"]["size"] == 10, limiter
    assert a.guest_exit() == 0
    assert "not enforced" not in a.proc.stderr.read()
