"""The Firecracker-compatible API, end to end over its Unix socket with
Debian's curl, as orchestration tools drive Firecracker: statuses, bodies
and fault messages, the socket file, the configuration file, metrics, and
a burst of bad requests from many clients at once.

Every test runs against two targets from the same build as POPEK, both
with fake VM controls that report each call on stdout (no KVM):

- api-stub: the HTTP server and the routes calling the controls in one
  process;
- rpc-stub: popek's side of the API (src/api/rpc.c) in one process, which
  starts the real popek-api (POPEK_API_BINARY, build/popek-api) as popek
  does and answers its requests over the socketpair: the same requests go
  through the RPC path. The tests named test_rpc_* check that path itself
  (the separate process, its privileges, who stops whom, failures).

API_TARGET replaces both with a command line of its own (e.g.
`API_TARGET="build/popek run"`), run as `API_TARGET --api-sock PATH
[--config-file FILE]`; it must print a line on stdout once it serves.
"""
import json
import os
import pathlib
import select
import shlex
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


class Target:
    """A program that serves the API: its command line and environment."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = dict(os.environ, **(env or {}))
        if not os.access(self.argv[0], os.X_OK):
            pytest.fail(f"{self.argv[0]} missing: build it first "
                        f"(ninja -C {popek_path().parent})")

    def cmd(self, sock, *args):
        return [*self.argv, "--api-sock", str(sock), *[str(a) for a in args]]

    def run(self, sock, *args, env=None):
        """Runs it to completion (for start-up errors)."""
        return subprocess.run(self.cmd(sock, *args), capture_output=True, text=True,
                              timeout=30, env=dict(self.env, **(env or {})))

    @property
    def rpc(self):
        return self.name == "rpc-stub"


def build_dir():
    return popek_path().parent


def popek_api_path():
    return build_dir() / "popek-api"


def make_target(name):
    if name == "custom":
        return Target(name, shlex.split(os.environ["API_TARGET"]))
    if name == "rpc-stub":
        return Target(name, [build_dir() / "tests" / "unit" / "rpc-stub"],
                      {"POPEK_API_BINARY": str(popek_api_path())})
    return Target(name, [build_dir() / "tests" / "unit" / "api-stub"])


TARGETS = ["custom"] if os.environ.get("API_TARGET") else ["api-stub", "rpc-stub"]


@pytest.fixture(scope="module", params=TARGETS)
def target(request):
    return make_target(request.param)


class Vmm:
    """One API server process and what it printed."""

    def __init__(self, target, sock, *args, env=None):
        self.target = target
        self.sock = str(sock)
        self.proc = subprocess.Popen(target.cmd(sock, *args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=dict(target.env, **(env or {})))
        self.lines = []
        self.partial = b""
        # The stubs print "ready" (after the calls a configuration file's
        # logger section makes); another target its first line.
        first = self.wait_line(lambda l: l.startswith("ready") or target.name == "custom",
                               "the first line (ready)")
        # rpc-stub: "ready <pid of popek-api>", the process that serves.
        words = first.split()
        self.api_pid = int(words[1]) if target.rpc and len(words) == 2 else self.proc.pid

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
        pytest.fail(f"no {what} from {self.target.argv}: {self.lines} "
                    f"(exit {self.proc.poll()})")

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
        """Descriptors of the process that holds the connections."""
        return len(os.listdir(f"/proc/{self.api_pid}/fd"))

    def stop(self):
        if self.proc.stdout.closed:
            return self.proc.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.drain(quiet=0)
        self.stderr = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture
def vmm(target, tmp_path):
    v = Vmm(target, tmp_path / "api.sock")
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


def stale_socket(path):
    """A socket file nobody listens on, as a killed server leaves it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def test_socket_file(target, tmp_path):
    sock = tmp_path / "api.sock"
    v = Vmm(target, sock)
    try:
        st = os.lstat(sock)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        # A second server on a live socket is refused, and leaves it alone.
        p = target.run(sock)
        assert p.returncode != 0
        assert "in use by another process" in p.stderr
        assert v.get("/")["state"] == "Not started"
    finally:
        assert v.stop() == 0
    assert not sock.exists()
    # A stale socket file (its server was killed) is replaced.
    v = Vmm(target, sock)
    v.proc.kill()
    v.proc.wait()
    v.stop()
    if target.rpc:
        # popek-api outlives a killed popek only until it sees the
        # socketpair close, and removes its socket file as it exits.
        wait_gone(v.api_pid)
        assert not sock.exists()
        stale_socket(sock)
    assert sock.exists()
    v = Vmm(target, sock)
    assert v.get("/")["state"] == "Not started"
    assert v.stop() == 0
    # Anything else at the path is refused and kept.
    sock.write_text("not a socket")
    p = target.run(sock)
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


def test_config_file(target, tmp_path):
    f = tmp_path / "vm_config.json"
    f.write_text(json.dumps(FC_CONFIG))
    v = Vmm(target, tmp_path / "api.sock", "--config-file", str(f))
    try:
        cfg = v.get("/vm/config")
        assert cfg["boot-source"]["kernel_image_path"] == "vmlinux.bin"
        assert cfg["machine-config"]["vcpu_count"] == 2
        assert cfg["drives"][0]["path_on_host"] == "bionic.rootfs.ext4"
        # What GET /vm/config returns is a configuration file again.
        f2 = tmp_path / "again.json"
        f2.write_text(json.dumps(cfg))
        v2 = Vmm(target, tmp_path / "api2.sock", "--config-file", str(f2))
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
        p = target.run(tmp_path / "bad.sock", "--config-file", f)
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
    if vmm.target.rpc:
        # The VMM's counters (rpc-stub's: one per state call) and gauges,
        # fetched from popek as FlushMetrics is handled.
        assert j["stub_vmm"]["answer"] == 42
        assert j["stub_vmm"]["state_calls"] >= 3
    # Counts are per period: the next line starts from zero.
    vmm.ok("PUT", "/actions", '{"action_type": "FlushMetrics"}')
    j = json.loads(m.read_text().splitlines()[1])
    assert j["get_api_requests"]["instance_info_count"] == 0
    assert j["put_api_requests"]["actions_count"] == 1
    if vmm.target.rpc:
        assert j["stub_vmm"]["answer"] == 42
        assert j["stub_vmm"]["state_calls"] < 5
    # The last line is written as the server stops.
    assert vmm.stop() == 0
    lines = m.read_text().splitlines()
    assert len(lines) == 3
    j = json.loads(lines[2])
    assert j["put_api_requests"]["actions_count"] == 0
    if vmm.target.rpc:
        assert j["stub_vmm"]["answer"] == 42


# ---- the RPC path itself: popek's side (rpc-stub) and popek-api ----

@pytest.fixture
def rpc():
    return make_target("rpc-stub")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def wait_gone(pid, timeout=10):
    """Waits until pid has exited (gone, or a zombie its new parent may
    never reap in a container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} still runs: {proc_status(pid)}")


def test_rpc_process(rpc, tmp_path):
    """popek-api is a process of its own, started by popek's side, with
    nothing of popek's and no privileges; popek's side has no HTTP code."""
    v = Vmm(rpc, tmp_path / "api.sock")
    try:
        api = v.api_pid
        assert api != v.proc.pid
        assert os.readlink(f"/proc/{api}/exe") == str(popek_api_path().resolve())
        status = proc_status(api)
        assert int(status["PPid"]) == v.proc.pid
        assert status["NoNewPrivs"] == "1"
        for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
            assert int(status[caps], 16) == 0, (caps, status[caps])
        # A session of its own: the terminal's signals go to popek only.
        assert os.getsid(api) == api
        fds = {int(fd): os.readlink(f"/proc/{api}/fd/{fd}") for fd in os.listdir(f"/proc/{api}/fd")}
        assert fds[0] == "/dev/null" and fds[1] == "/dev/null", fds
        assert fds[3].startswith("socket:"), fds
        # Beyond 0-3: the listening socket, libmicrohttpd's and its own
        # descriptors; no file.
        assert all(t.startswith(("socket:", "anon_inode:", "pipe:")) for fd, t in fds.items()
                   if fd > 3), fds
        with open(f"/proc/{v.proc.pid}/maps") as f:
            assert "libmicrohttpd" not in f.read()
        with open(f"/proc/{api}/maps") as f:
            assert "libmicrohttpd" in f.read()
        assert v.get("/")["state"] == "Not started"
    finally:
        assert v.stop() == 0
    # popek's side stopped popek-api and reaped it; the socket file went
    # with it.
    assert "stopped" in v.lines
    assert not os.path.exists(f"/proc/{api}")
    assert not (tmp_path / "api.sock").exists()
    assert "error" not in v.stderr and "warning" not in v.stderr, v.stderr


def test_rpc_popek_killed(rpc, tmp_path):
    """popek-api exits when popek does, whatever the way."""
    sock = tmp_path / "api.sock"
    v = Vmm(rpc, sock)
    api = v.api_pid
    v.proc.kill()
    v.proc.wait()
    wait_gone(api, timeout=5)
    assert not sock.exists()
    v.stop()


def test_rpc_api_killed(rpc, tmp_path):
    """popek goes on when popek-api dies, says so once, and stops cleanly."""
    v = Vmm(rpc, tmp_path / "api.sock")
    start(v)
    os.kill(v.api_pid, signal.SIGKILL)
    time.sleep(0.3)
    assert v.proc.poll() is None
    assert v.stop() == 0
    assert "stopped" in v.lines
    assert v.stderr.count("popek-api exited: the API is no longer served") == 1, v.stderr


def test_rpc_start_failures(rpc, tmp_path):
    """Each way popek-api can fail to start is one error line from popek's
    side, and leaves no socket file and no process."""
    def one_line(p, needle):
        assert p.returncode == 2, p
        lines = p.stderr.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("rpc-stub: error: "), lines
        assert needle in lines[0], lines

    nope = tmp_path / "nope"
    one_line(rpc.run(tmp_path / "a.sock", env={"POPEK_API_BINARY": str(nope)}),
             f"cannot run the API server {nope}: No such file or directory")
    # Not found beside the program (rpc-stub is in tests/unit/).
    one_line(rpc.run(tmp_path / "a.sock", env={"POPEK_API_BINARY": ""}),
             "tests/unit/popek-api: No such file or directory (it is built and installed "
             "beside popek; POPEK_API_BINARY names another)")
    # popek-api's own reasons, reported through the socketpair.
    one_line(rpc.run(tmp_path / ("x" * 120)), "a Unix socket path holds at most 107 bytes")
    one_line(rpc.run(tmp_path / "no" / "dir.sock"), "No such file or directory")
    f = tmp_path / "vm.json"
    f.write_text(json.dumps({"metrics": {"metrics_path": str(tmp_path / "no" / "m.json")}}))
    one_line(rpc.run(tmp_path / "a.sock", "--config-file", f),
             "Cannot initialize the metrics system")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vm.json"]


def test_rpc_initial_config(rpc, tmp_path):
    """The configuration file goes to popek-api in "hello": its logger
    section comes back as a configure_logger call before popek-api is
    ready, its metrics section starts popek-api's metrics writer, which
    reports the VMM's counters too; --id is GET / "id"."""
    m = tmp_path / "metrics.json"
    f = tmp_path / "vm.json"
    f.write_text(json.dumps({**FC_CONFIG, "logger": {"level": "Warning"},
                             "metrics": {"metrics_path": str(m)}}))
    v = Vmm(rpc, tmp_path / "api.sock", "--config-file", f, "--id", "vm_7")
    try:
        assert v.lines[0] == "logger - Warning", v.lines
        assert v.lines[1].startswith("ready "), v.lines
        info = v.get("/")
        assert info["id"] == "vm_7"
        assert v.get("/vm/config")["metrics"] == {"metrics_path": str(m)}
        start(v)
        v.ok("PATCH", "/vm", '{"state": "Paused"}')
        v.wait_line(lambda l: l == "pause", "pause call")
    finally:
        assert v.stop() == 0
    lines = [json.loads(l) for l in m.read_text().splitlines()]
    assert lines and lines[-1]["stub_vmm"]["answer"] == 42
    assert sum(l["stub_vmm"]["state_calls"] for l in lines) > 5
    assert sum(l["patch_api_requests"]["vm_count"] for l in lines) == 1


def test_rpc_api_by_hand(tmp_path):
    """popek-api without popek: one error, nothing made."""
    p = run([popek_api_path(), "--api-sock", tmp_path / "x.sock"])
    assert p.returncode == 2
    assert "popek-api: error: fd 3 is not a socket" in p.stderr
    assert not (tmp_path / "x.sock").exists()
