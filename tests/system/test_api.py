"""The Firecracker-compatible API, end to end over its Unix socket with
Debian's curl, as orchestration tools drive Firecracker: statuses, bodies
and fault messages, the socket file, the configuration file, metrics, and
a burst of bad requests from many clients at once.

The target is tests/unit/api-stub from the same build as POPEK (the API
server with fake VM controls that report each call on stdout; no KVM), or
the program named by API_TARGET, run as `API_TARGET --api-sock PATH
[--config-file FILE]`, which must print a line on stdout once it serves.
"""
import json
import os
import pathlib
import select
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import popek_path, run

pytestmark = pytest.mark.direct

NOT_AFTER = "The requested operation is not supported after starting the microVM."
NOT_BEFORE = "The requested operation is not supported before starting the microVM."
DESER = "An error occurred when deserializing the json body of a request: "


def target():
    t = os.environ.get("API_TARGET")
    p = pathlib.Path(t) if t else popek_path().parent / "tests" / "unit" / "api-stub"
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} missing: build it first (ninja -C {popek_path().parent})")
    return p


class Vmm:
    """One API server process and what it printed."""

    def __init__(self, sock, *args):
        self.sock = str(sock)
        self.proc = subprocess.Popen([str(target()), "--api-sock", self.sock, *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.partial = b""
        self.wait_line(lambda l: True, "the first line (ready)")

    def wait_line(self, pred, what, timeout=10):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            for l in self.lines:
                if pred(l):
                    return l
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # Raw reads: a buffered readline() would hide lines from select().
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                d = os.read(fd, 65536)
                if not d:
                    break
                self.partial += d
                *done, self.partial = self.partial.split(b"\n")
                self.lines += [l.decode() for l in done]
        pytest.fail(f"no {what} from {target()}: {self.lines} (exit {self.proc.poll()})")

    def drain(self, quiet=0.2):
        """Reads what the server printed until it is quiet for a moment."""
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], quiet)[0]:
            d = os.read(fd, 65536)
            if not d:
                break
            self.partial += d
            *done, self.partial = self.partial.split(b"\n")
            self.lines += [l.decode() for l in done]

    def curl(self, method, path, body=None, data_file=None):
        cmd = ["curl", "-s", "-S", "--unix-socket", self.sock, "-X", method,
               "-H", "Accept: application/json", "-o", "-", "-w", "\n%{http_code} %{content_type}"]
        if body is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", body]
        if data_file is not None:
            cmd += ["-H", "Content-Type: application/json", "--data-binary", f"@{data_file}"]
        p = run(cmd + [f"http://localhost{path}"], timeout=30)
        assert p.returncode == 0, p.stderr
        out, _, tail = p.stdout.rpartition("\n")
        code, _, ctype = tail.partition(" ")
        return int(code), out, ctype

    def ok(self, method, path, body=None):
        code, out, ctype = self.curl(method, path, body)
        assert code == 204, (method, path, code, out)
        assert out == ""

    def get(self, path):
        code, out, ctype = self.curl("GET", path)
        assert code == 200, (path, code, out)
        assert ctype == "application/json"
        return json.loads(out)

    def fault(self, method, path, body=None, status=400, data_file=None):
        code, out, ctype = self.curl(method, path, body, data_file)
        assert code == status, (method, path, code, out)
        assert ctype == "application/json", ctype
        j = json.loads(out)
        assert list(j) == ["fault_message"], j
        return j["fault_message"]

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture
def vmm(tmp_path):
    v = Vmm(tmp_path / "api.sock")
    yield v
    v.stop()


GETTING_STARTED = [
    ("PUT", "/boot-source", {"kernel_image_path": "/images/vmlinux",
                             "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"}),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/images/rootfs.ext4",
                               "is_root_device": True, "is_read_only": False}),
    ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 1024}),
    ("PUT", "/network-interfaces/net1", {"iface_id": "net1", "guest_mac": "06:00:AC:10:00:02",
                                         "host_dev_name": "tap0"}),
]


def start(vmm):
    for method, path, body in GETTING_STARTED:
        vmm.ok(method, path, json.dumps(body))
    vmm.ok("PUT", "/actions", '{"action_type": "InstanceStart"}')


def test_getting_started(vmm):
    info = vmm.get("/")
    assert info["state"] == "Not started"
    assert info["app_name"] == "popek"
    assert info["id"] == "anonymous-instance"
    assert vmm.get("/version") == {"firecracker_version": info["vmm_version"]}
    assert vmm.get("/machine-config") == {"vcpu_count": 1, "mem_size_mib": 128, "smt": False,
                                          "track_dirty_pages": False, "huge_pages": "None"}
    start(vmm)
    line = vmm.wait_line(lambda l: l.startswith("start "), "start call")
    cfg = json.loads(line[len("start "):])
    assert cfg["boot-source"] == {"kernel_image_path": "/images/vmlinux", "initrd_path": None,
                                  "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"}
    assert cfg["machine-config"]["vcpu_count"] == 2
    assert cfg["machine-config"]["mem_size_mib"] == 1024
    assert [d["drive_id"] for d in cfg["drives"]] == ["rootfs"]
    assert cfg["drives"][0]["path_on_host"] == "/images/rootfs.ext4"
    assert cfg["drives"][0]["is_root_device"] is True
    assert cfg["network-interfaces"][0]["guest_mac"] == "06:00:ac:10:00:02"
    assert vmm.get("/vm/config") == cfg
    assert vmm.get("/")["state"] == "Running"


def test_pause_resume(vmm):
    assert vmm.fault("PATCH", "/vm", '{"state": "Paused"}') == NOT_BEFORE
    start(vmm)
    vmm.ok("PATCH", "/vm", '{"state": "Paused"}')
    vmm.wait_line(lambda l: l == "pause", "pause call")
    assert vmm.get("/")["state"] == "Paused"
    vmm.ok("PATCH", "/vm", '{"state": "Resumed"}')
    vmm.wait_line(lambda l: l == "resume", "resume call")
    assert vmm.get("/")["state"] == "Running"
    vmm.ok("PUT", "/actions", '{"action_type": "SendCtrlAltDel"}')
    vmm.wait_line(lambda l: l == "ctrl_alt_del", "ctrl_alt_del call")
    vmm.ok("PATCH", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/images/new.ext4"}')
    vmm.wait_line(lambda l: l == "update_drive rootfs /images/new.ext4", "update_drive call")


@pytest.mark.parametrize("method,path,body", [
    ("PUT", "/boot-source", '{"kernel_image_path": "/k"}'),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128}'),
    ("PATCH", "/machine-config", '{"vcpu_count": 1}'),
    ("PUT", "/drives/data", '{"drive_id": "data", "path_on_host": "/d", "is_root_device": false}'),
    ("PUT", "/network-interfaces/n2", '{"iface_id": "n2", "host_dev_name": "tap2"}'),
    ("PUT", "/balloon", '{"amount_mib": 1, "deflate_on_oom": true}'),
    ("PUT", "/logger", '{"level": "Info"}'),
    ("PUT", "/metrics", '{"metrics_path": "/tmp/m"}'),
    ("PUT", "/entropy", '{}'),
    ("PUT", "/actions", '{"action_type": "InstanceStart"}'),
])
def test_pre_boot_only_after_start(vmm, method, path, body):
    start(vmm)
    assert vmm.fault(method, path, body) == NOT_AFTER
    vmm.drain()
    assert sum(l.startswith("start ") for l in vmm.lines) == 1


@pytest.mark.parametrize("method,path,body,message", [
    ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": ', DESER + "invalid JSON"),
    ("PUT", "/machine-config", '{"vcpu_count": "2", "mem_size_mib": 128}',
     DESER + 'invalid type for "vcpu_count" in machine-config: expected a non-negative integer, '
     'got a string'),
    ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 128, "foo": 1}',
     DESER + 'unknown field "foo" in machine-config'),
    ("PUT", "/machine-config", '{"mem_size_mib": 128}',
     DESER + 'missing field "vcpu_count" in machine-config'),
    ("PUT", "/machine-config", '{"vcpu_count": 0, "mem_size_mib": 128}',
     "Machine config error: the number of vCPUs must be between 1 and 254, got 0"),
    ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 128, "smt": true}',
     "simultaneous multithreading"),
    ("PUT", "/machine-config", "[]", DESER + "machine-config: expected a JSON object"),
    ("PUT", "/boot-source", '{"kernel_image_path": 5}', DESER + 'invalid type for "kernel_image_path"'),
    ("PUT", "/drives/rootfs", '{"drive_id": "other", "path_on_host": "/r", "is_root_device": true}',
     "The id from the path does not match the id from the body!"),
    ("PUT", "/drives/a.b", '{}', "API Resource IDs can only contain alphanumeric characters and underscores."),
    ("PUT", "/drives", '{}', "The ID cannot be empty."),
    ("PUT", "/network-interfaces/n", '{"iface_id": "n", "host_dev_name": "tap0", "guest_mac": "zz"}',
     'invalid guest_mac "zz"'),
    ("PUT", "/actions", '{"action_type": "Explode"}', DESER + 'unknown variant "Explode"'),
    ("PUT", "/actions", "", "Empty PUT request."),
    ("PATCH", "/vm", "", "Empty PATCH request."),
    ("GET", "/nope", None, "Invalid request method and/or path: GET nope."),
    ("PUT", "/vm", '{"state": "Paused"}', "Invalid request method and/or path: PUT vm."),
    ("POST", "/actions", '{"action_type": "InstanceStart"}',
     "Invalid request method and/or path: POST actions."),
    ("DELETE", "/drives/rootfs", None, "Invalid request method and/or path: DELETE drives/rootfs."),
    ("PUT", "/snapshot/create", '{"snapshot_path": "/s", "mem_file_path": "/m"}',
     "popek does not support /snapshot/create yet"),
    ("PUT", "/snapshot/load", '{"snapshot_path": "/s"}', "popek does not support /snapshot/load yet"),
    ("PUT", "/vsock", '{"guest_cid": 3, "uds_path": "/v"}', "popek does not support /vsock yet"),
    ("PUT", "/mmds", '{}', "popek does not support /mmds yet"),
    ("PUT", "/mmds/config", '{"network_interfaces": []}', "popek does not support /mmds/config yet"),
    ("PUT", "/cpu-config", '{}', "popek does not support /cpu-config yet"),
    ("GET", "/balloon", None, "No balloon device found."),
])
def test_errors(vmm, method, path, body, message):
    m = vmm.fault(method, path, body)
    assert message in m, m
    # Nothing reached the VM, and the server goes on.
    vmm.drain()
    assert not any(l.startswith("start ") for l in vmm.lines)
    assert vmm.get("/")["state"] == "Not started"


def test_get_with_body(vmm):
    p = run(["curl", "-s", "--unix-socket", vmm.sock, "-X", "GET", "--data-binary", "{}",
             "http://localhost/"])
    assert json.loads(p.stdout) == {"fault_message": "GET request cannot have a body."}


def test_oversized_body(vmm, tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"kernel_image_path": "' + "x" * 60000 + '"}')
    m = vmm.fault("PUT", "/boot-source", data_file=big)
    assert m == ("Request payload with size 60025 is larger than the limit of 51200 "
                 "allowed by server."), m
    # A body just under the limit is read (and refused for what it says).
    ok = tmp_path / "ok.json"
    ok.write_text('{"kernel_image_path": "/k",' + " " * 46000 + '"boot_args": "' + "a" * 4096 + '"}')
    assert 50000 < ok.stat().st_size < 51200
    m = vmm.fault("PUT", "/boot-source", data_file=ok)
    assert '"boot_args" in boot-source is 4096 bytes long, at most 4095 are allowed' in m
    assert vmm.get("/")["state"] == "Not started"


def raw(sock, data, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out


def test_malformed_http(vmm):
    for data in (b"GET / FOO/1.1\r\n\r\n",
                 b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
                 b"PUT /actions HTTP/1.1\r\nContent-Length: -5\r\n\r\n"):
        out = raw(vmm.sock, data)
        assert out.startswith(b"HTTP/1.1 400 "), (data, out)
    # No request line at all: the connection is closed.
    assert raw(vmm.sock, b"GARBAGE\r\n\r\n") == b""
    # A client that goes away mid-request or before reading the answer.
    s = socket.socket(socket.AF_UNIX)
    s.connect(vmm.sock)
    s.sendall(b"PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"kernel")
    s.close()
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(vmm.sock)
        s.sendall(b"GET /vm/config HTTP/1.1\r\n\r\n")
        s.close()
    assert vmm.get("/")["state"] == "Not started"
    assert vmm.proc.poll() is None


def test_burst_of_bad_requests(vmm):
    before = vmm.fds()
    bad = [
        ("PUT", "/machine-config", '{"vcpu_count": '),
        ("PUT", "/nope", "{}"),
        ("PATCH", "/vm", '{"state": "Paused"}'),
        ("PUT", "/drives/x", '{"drive_id": "y"}'),
        ("GET", "/snapshot/create", None),
    ]
    results = []
    lock = threading.Lock()

    def client(i):
        for j in range(10):
            method, path, body = bad[(i + j) % len(bad)]
            code, out, ctype = vmm.curl(method, path, body)
            with lock:
                results.append((code, ctype, "fault_message" in json.loads(out)))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 200
    assert all(r == (400, "application/json", True) for r in results), \
        [r for r in results if r != (400, "application/json", True)][:5]
    assert vmm.proc.poll() is None
    # A good request still works.
    vmm.ok("PUT", "/machine-config", '{"vcpu_count": 4, "mem_size_mib": 512}')
    assert vmm.get("/machine-config")["vcpu_count"] == 4
    # Every connection's descriptor was closed (connection threads exit
    # a moment after their client).
    for _ in range(50):
        if vmm.fds() == before:
            break
        time.sleep(0.1)
    assert vmm.fds() == before


def test_socket_file(tmp_path):
    sock = tmp_path / "api.sock"
    v = Vmm(sock)
    try:
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        # A second server on a live socket is refused, and leaves it alone.
        p = subprocess.run([str(target()), "--api-sock", str(sock)], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode != 0
        assert "in use by another process" in p.stderr
        assert v.get("/")["state"] == "Not started"
    finally:
        assert v.stop() == 0
    assert not sock.exists()
    # A stale socket file (its server was killed) is replaced.
    v = Vmm(sock)
    v.proc.kill()
    v.proc.wait()
    assert sock.exists()
    v = Vmm(sock)
    assert v.get("/")["state"] == "Not started"
    assert v.stop() == 0
    # Anything else at the path is refused and kept.
    sock.write_text("not a socket")
    p = subprocess.run([str(target()), "--api-sock", str(sock)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0
    assert "exists and is not a socket" in p.stderr
    assert sock.read_text() == "not a socket"


FC_CONFIG = {
    "boot-source": {"kernel_image_path": "vmlinux.bin",
                    "boot_args": "console=ttyS0 reboot=k panic=1 pci=off", "initrd_path": None},
    "drives": [{"drive_id": "rootfs", "partuuid": None, "is_root_device": True,
                "cache_type": "Unsafe", "is_read_only": False,
                "path_on_host": "bionic.rootfs.ext4", "io_engine": "Sync", "rate_limiter": None,
                "socket": None}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": False,
                       "track_dirty_pages": False, "huge_pages": "None"},
    "cpu-config": None, "balloon": None, "network-interfaces": [], "vsock": None,
    "logger": None, "metrics": None, "mmds-config": None, "entropy": None,
}


def test_config_file(tmp_path):
    f = tmp_path / "vm_config.json"
    f.write_text(json.dumps(FC_CONFIG))
    v = Vmm(tmp_path / "api.sock", "--config-file", str(f))
    try:
        cfg = v.get("/vm/config")
        assert cfg["boot-source"]["kernel_image_path"] == "vmlinux.bin"
        assert cfg["machine-config"]["vcpu_count"] == 2
        assert cfg["drives"][0]["path_on_host"] == "bionic.rootfs.ext4"
        # What GET /vm/config returns is a configuration file again.
        f2 = tmp_path / "again.json"
        f2.write_text(json.dumps(cfg))
        v2 = Vmm(tmp_path / "api2.sock", "--config-file", str(f2))
        assert v2.get("/vm/config") == cfg
        v2.stop()
    finally:
        v.stop()

    for bad, needle in [
        ({**FC_CONFIG, "bogus": {}}, 'unknown section "bogus" in the configuration file'),
        ({**FC_CONFIG, "vsock": {"guest_cid": 3, "uds_path": "/v"}}, 'popek does not support "vsock"'),
        ({**FC_CONFIG, "machine-config": {"vcpu_count": 2}}, 'missing field "mem_size_mib"'),
        ({**FC_CONFIG, "drives": [FC_CONFIG["drives"][0], {"drive_id": "x"}]}, "drives[1]"),
    ]:
        f.write_text(json.dumps(bad))
        p = subprocess.run([str(target()), "--api-sock", str(tmp_path / "bad.sock"),
                            "--config-file", str(f)], capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, p
        assert needle in p.stderr and str(f) in p.stderr, p.stderr
        assert not (tmp_path / "bad.sock").exists()


def test_metrics(vmm, tmp_path):
    m = tmp_path / "metrics.json"
    vmm.ok("PUT", "/metrics", json.dumps({"metrics_path": str(m)}))
    assert vmm.fault("PUT", "/metrics", json.dumps({"metrics_path": str(m)})) == \
        "Reinitialization of metrics not allowed."
    vmm.get("/")
    vmm.ok("PUT", "/actions", '{"action_type": "FlushMetrics"}')
    lines = m.read_text().splitlines()
    assert len(lines) == 1
    j = json.loads(lines[0])
    assert j["utc_timestamp_ms"] > 0
    assert j["get_api_requests"]["instance_info_count"] == 1
    assert j["put_api_requests"]["metrics_count"] == 2
    assert j["put_api_requests"]["metrics_fails"] == 1
    assert j["api_server"]["requests"] >= 3
    # Counts are per period: the next line starts from zero.
    vmm.ok("PUT", "/actions", '{"action_type": "FlushMetrics"}')
    j = json.loads(m.read_text().splitlines()[1])
    assert j["get_api_requests"]["instance_info_count"] == 0
    assert j["put_api_requests"]["actions_count"] == 1
