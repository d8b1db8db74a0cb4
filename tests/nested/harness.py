# SPDX-License-Identifier: GPL-2.0-only
"""Run commands inside an L1 Linux VM that has a faithful /dev/kvm.

The host's /dev/kvm may not run guest kernels faithfully (see
docs/nested-harness.md). QEMU's software CPU (TCG) emulates AMD-V with
nested paging, so a KVM inside a QEMU-TCG VM ("L1") behaves like KVM on
real hardware, only slower. This module boots such an L1 with the host's
/ shared read-only over 9p, runs one command in it and returns its output
and exit status.

    import harness
    harness.ensure_ready()                  # install/build up front
    r = harness.run(["build/popek", "--help"], timeout=300)
    r.returncode, r.stdout, r.stderr, r.outdir, r.boot_seconds, r.elapsed
    harness.host_kvm_is_faithful()          # may tests use /dev/kvm directly?

Environment variables (all optional):
    POPEK_NESTED_MEMORY_MB   L1 memory, default 4096
    POPEK_NESTED_CPUS        L1 vCPUs, default 2
    POPEK_NESTED_TIMEOUT     default timeout of run(), seconds, default 900
    POPEK_NESTED_CACHE       initramfs cache dir, default ~/.cache/popek-nested
    POPEK_NESTED_KERNEL      kernel version to boot, default the newest usable
    POPEK_NESTED_KEEP        1: keep run() temp dirs after exit (debugging)
    POPEK_KVM_PROBE          kvm-probe binary to use
    POPEK_HOST_KVM_FAITHFUL  1/0: force host_kvm_is_faithful()
"""

import atexit
import ctypes
import fcntl
import hashlib
import os
import pathlib
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "guests"))
import popek_guests  # noqa: E402  (the ELF check; build-initramfs's helpers)

REPO_ROOT = HERE.parent.parent
BUILDER = HERE / "build-initramfs"
GUEST_LIB = REPO_ROOT / "tests" / "guests" / "popek_guests.py"   # BUILDER's helpers
PROBE_SOURCE = HERE / "kvm-probe.c"

TIMEOUT_STATUS = 124     # run() result / CLI exit status on timeout
HARNESS_STATUS = 125     # CLI exit status when the harness itself fails

DEFAULT_MEMORY_MB = 4096
DEFAULT_CPUS = 2
DEFAULT_TIMEOUT = 900

# host_kvm_is_faithful() thresholds. Measured (docs/nested-harness.md):
# paravirtual host ~1000 ns/iteration, KVM in L1 under TCG ~2 ns, hardware
# KVM < 1 ns. Anything above 100 ns means ring 0 is being emulated.
FAITHFUL_MAX_NS_PER_ITERATION = 100.0

PATH_IN_L1 = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Directories /init covers with tmpfs in L1; host paths below them that the
# command needs are bound back (read-only) into the tmpfs.
MASKED_DIRS = ("/tmp", "/run", "/var/tmp")

# Debian packages, keyed by what we look for.
PACKAGES = {
    "qemu": "qemu-system-x86",
    "kernel": "linux-image-amd64",
    "busybox": "busybox-static",
    "modinfo": "kmod",
    "gcc": "gcc",
}


class HarnessError(Exception):
    """The harness could not run the command (not the command's failure)."""


class Result:
    """What run() returns.

    returncode   the command's exit status (TIMEOUT_STATUS on timeout)
    stdout, stderr  its output (str); .output is both, stdout first
    outdir       pathlib.Path of the writable share on the host; the
                 command sees it at the same path (also $POPEK_NESTED_OUT)
    boot_seconds host seconds from starting QEMU to the command starting
    command_seconds  host seconds the command ran (None on timeout)
    elapsed      host seconds for the whole round trip
    timed_out    True if the command was killed at the timeout
    message      the harness's own message ("" unless timed out)
    console      L1's serial console output
    """

    def __init__(self, **kw):
        self.cmd = kw.get("cmd")
        self.returncode = kw.get("returncode")
        self.stdout = kw.get("stdout", "")
        self.stderr = kw.get("stderr", "")
        self.outdir = kw.get("outdir")
        self.boot_seconds = kw.get("boot_seconds")
        self.command_seconds = kw.get("command_seconds")
        self.elapsed = kw.get("elapsed")
        self.timed_out = kw.get("timed_out", False)
        self.message = kw.get("message", "")
        self.console = kw.get("console", "")
        self._cleanup = kw.get("cleanup")

    @property
    def output(self):
        return self.stdout + self.stderr

    def cleanup(self):
        """Remove outdir now if run() created it (else it goes at exit)."""
        if self._cleanup:
            self._cleanup()
            self._cleanup = None

    def check(self):
        """Raise HarnessError unless the command exited with status 0."""
        if self.returncode != 0:
            raise HarnessError(
                "nested: %s exited with status %s\n--- stdout\n%s--- stderr\n%s"
                % (self.cmd, self.returncode, self.stdout, self.stderr))
        return self

    def __repr__(self):
        return ("Result(returncode=%r, timed_out=%r, boot_seconds=%s, "
                "elapsed=%s, outdir=%r)" % (
                    self.returncode, self.timed_out,
                    _fmt(self.boot_seconds), _fmt(self.elapsed),
                    str(self.outdir)))


def _fmt(x):
    return "None" if x is None else "%.2f" % x


# ---- processes and temp dirs we own --------------------------------------

_live_groups = set()
_temp_dirs = []
_lock = threading.Lock()


def _kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _at_exit():
    with _lock:
        groups = list(_live_groups)
        dirs = list(_temp_dirs)
    for pgid in groups:
        _kill_group(pgid)
    if os.environ.get("POPEK_NESTED_KEEP") != "1":
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _preexec():
    # QEMU dies with us even if we are SIGKILLed (atexit would not run).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _log(msg):
    sys.stderr.write("nested: %s\n" % msg)
    sys.stderr.flush()


# ---- installing what we need ----------------------------------------------

_apt_updated = False


def _apt_install(packages):
    global _apt_updated
    if os.geteuid() != 0:
        raise HarnessError(
            "nested: missing Debian packages %s and not root; install them "
            "with: apt-get install %s" % (" ".join(packages),
                                          " ".join(packages)))
    if not shutil.which("apt-get"):
        raise HarnessError("nested: missing %s and no apt-get to install "
                           "them" % " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = []
    if not _apt_updated:
        steps.append(["apt-get", "update", "-q"])
    steps.append(["apt-get", "install", "-y", "-q", "--no-install-recommends"]
                 + packages)
    _log("installing %s" % " ".join(packages))
    for argv in steps:
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            tail = "\n".join(r.stdout.splitlines()[-15:])
            raise HarnessError("nested: cannot install %s: %s failed:\n%s"
                               % (" ".join(packages), " ".join(argv), tail))
        if argv[1] == "update":
            _apt_updated = True


def _version_key(v):
    return [int(p) if p.isdigit() else p
            for p in re.split(r"(\d+)", v)]


def _usable_kernels():
    """Kernel versions with a vmlinuz, modules and 9p, newest first."""
    found = []
    for vmlinuz in pathlib.Path("/boot").glob("vmlinuz-*"):
        ver = vmlinuz.name[len("vmlinuz-"):]
        mods = pathlib.Path("/lib/modules") / ver
        if not (mods / "modules.dep").is_file():
            continue
        if not list((mods / "kernel" / "fs" / "9p").glob("9p.ko*")):
            continue
        if not os.access(vmlinuz, os.R_OK):
            continue
        found.append(ver)
    return sorted(found, key=_version_key, reverse=True)


def _busybox_path():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if popek_guests.is_static_elf(p):
            return p
    return None


def _missing_packages():
    missing = []
    if not shutil.which("qemu-system-x86_64"):
        missing.append(PACKAGES["qemu"])
    wanted = os.environ.get("POPEK_NESTED_KERNEL")
    if not wanted and not _usable_kernels():
        missing.append(PACKAGES["kernel"])
    if not _busybox_path():
        missing.append(PACKAGES["busybox"])
    if not shutil.which("modinfo") and not os.path.exists("/sbin/modinfo"):
        missing.append(PACKAGES["modinfo"])
    return missing


def cache_dir():
    d = os.environ.get("POPEK_NESTED_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "popek-nested")
    p = pathlib.Path(d)
    p.mkdir(parents=True, exist_ok=True)
    return p


class _Ready:
    def __init__(self, kernel_version, vmlinuz, initramfs, qemu):
        self.kernel_version = kernel_version
        self.vmlinuz = vmlinuz
        self.initramfs = initramfs
        self.qemu = qemu


_ready = None


def ensure_ready():
    """Install missing packages and build (or reuse) the L1 initramfs.

    Returns an object with .kernel_version, .vmlinuz, .initramfs, .qemu.
    Raises HarnessError with one clear message when that is impossible.
    Cheap after the first call in a process.
    """
    global _ready
    with _lock:
        if _ready:
            return _ready
    missing = _missing_packages()
    if missing:
        _apt_install(missing)
        missing = _missing_packages()
        if missing:
            raise HarnessError("nested: still missing after installing: %s"
                               % " ".join(missing))
    if not shutil.which("modinfo"):
        os.environ["PATH"] = os.environ.get("PATH", "") + ":/sbin:/usr/sbin"

    ver = os.environ.get("POPEK_NESTED_KERNEL")
    if ver:
        if ver not in _usable_kernels():
            raise HarnessError(
                "nested: POPEK_NESTED_KERNEL=%s: no /boot/vmlinuz-%s with "
                "modules (including 9p) in /lib/modules/%s" % (ver, ver, ver))
    else:
        ver = _usable_kernels()[0]
    vmlinuz = pathlib.Path("/boot/vmlinuz-%s" % ver)
    busybox = _busybox_path()

    h = hashlib.sha256()
    h.update(BUILDER.read_bytes())
    h.update(GUEST_LIB.read_bytes())
    for p in (vmlinuz, pathlib.Path("/lib/modules/%s/modules.dep" % ver),
              pathlib.Path(busybox)):
        st = p.stat()
        h.update(("%s:%d:%d\n" % (p, st.st_size, st.st_mtime_ns)).encode())
    key = h.hexdigest()[:16]
    cdir = cache_dir()
    image = cdir / ("initramfs-%s-%s.cpio" % (ver, key))
    with open(cdir / ".lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if not image.exists():
            _log("building the L1 initramfs for kernel %s" % ver)
            r = subprocess.run(
                ["/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                 else sys.executable, str(BUILDER), "--kernel-version", ver,
                 "--output", str(image), "--busybox", busybox],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0 or not image.exists():
                raise HarnessError("nested: building the initramfs failed:\n"
                                   + r.stdout)
            for old in cdir.glob("initramfs-*.cpio"):
                if old != image:
                    old.unlink(missing_ok=True)
    ready = _Ready(ver, vmlinuz, image, shutil.which("qemu-system-x86_64"))
    with _lock:
        _ready = ready
    return ready


# ---- running a command in L1 ----------------------------------------------

def _under_masked(path):
    p = os.path.normpath(str(path))
    return any(p == d or p.startswith(d + "/") for d in MASKED_DIRS)


def _int_env(name, default):
    v = os.environ.get(name)
    if not v:
        return default
    try:
        return int(v)
    except ValueError:
        raise HarnessError("nested: %s=%r is not an integer" % (name, v))


def _read(path):
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


class _Follower:
    """Copies what a growing file gets to a sink while L1 runs."""

    def __init__(self, path, sink):
        self.path, self.sink, self.pos = path, sink, 0

    def poll(self):
        if self.sink is None:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        if data:
            self.pos += len(data)
            out = getattr(self.sink, "buffer", self.sink)
            out.write(data)
            self.sink.flush()


def run(cmd, timeout=None, memory_mb=None, cpus=None, cwd=None, env=None,
        outdir=None, keep_paths=(), stdout_sink=None, stderr_sink=None):
    """Run cmd inside L1 and return a Result.

    cmd        a list (executed as is) or a string (run by /bin/sh -c)
    timeout    seconds for boot + command (default $POPEK_NESTED_TIMEOUT or
               900); on expiry L1 is killed and the Result has
               returncode=124, timed_out=True and a message
    memory_mb  L1 memory (default $POPEK_NESTED_MEMORY_MB or 4096)
    cpus       L1 vCPUs (default $POPEK_NESTED_CPUS or 2)
    cwd        directory the command starts in (default: the caller's cwd)
    env        extra environment variables for the command
    outdir     the writable share: kept. Default: a fresh temp dir, removed
               at process exit (or by Result.cleanup())
    keep_paths host paths under /tmp, /run, /var/tmp to keep visible in L1
               (cwd, the repo and the kvm-probe are kept automatically)
    stdout_sink, stderr_sink  binary-or-text streams that get the command's
               output while it runs (the CLI uses this)

    The command runs as root in a chroot into the host's / (read-only, via
    9p), with tmpfs on /tmp /run /var/tmp /dev/shm, L1's own /proc /sys
    /dev (so /dev/kvm is L1's), PATH=PATH_IN_L1, HOME=/root, TERM=dumb,
    LANG=C.UTF-8, POPEK_NESTED=1 and POPEK_NESTED_OUT=<outdir>.
    Raises HarnessError when L1 cannot be started or does not report back.
    """
    ready = ensure_ready()
    if timeout is None:
        timeout = _int_env("POPEK_NESTED_TIMEOUT", DEFAULT_TIMEOUT)
    memory_mb = memory_mb or _int_env("POPEK_NESTED_MEMORY_MB",
                                      DEFAULT_MEMORY_MB)
    cpus = cpus or _int_env("POPEK_NESTED_CPUS", DEFAULT_CPUS)
    cwd = os.path.abspath(str(cwd) if cwd is not None else os.getcwd())
    if not os.path.isdir(cwd):
        raise HarnessError("nested: cwd %s is not a directory" % cwd)

    cleanup = None
    if outdir is None:
        out = pathlib.Path(tempfile.mkdtemp(prefix="popek-nested-"))
        with _lock:
            _temp_dirs.append(out)

        def cleanup(out=out):
            shutil.rmtree(out, ignore_errors=True)
            with _lock:
                if out in _temp_dirs:
                    _temp_dirs.remove(out)
    else:
        out = pathlib.Path(outdir).resolve()
        out.mkdir(parents=True, exist_ok=True)
    meta = out / ".nested"
    if meta.exists():
        shutil.rmtree(meta)
    meta.mkdir()

    keep = [cwd, str(REPO_ROOT)] + [os.path.abspath(str(p)) for p in keep_paths]
    probe = os.environ.get("POPEK_KVM_PROBE")
    if probe:
        keep.append(os.path.abspath(probe))
    keep = [p for p in dict.fromkeys(keep) if _under_masked(p)]
    (meta / "config.sh").write_text(
        "NESTED_OUTPATH=%s\nNESTED_KEEP=%s\n" % (
            shlex.quote(str(out)), shlex.quote("\n".join(keep))))

    if isinstance(cmd, (str, bytes)):
        argv = ["/bin/sh", "-c", cmd if isinstance(cmd, str) else cmd.decode()]
    else:
        argv = [str(a) for a in cmd]
        if not argv:
            raise HarnessError("nested: empty command")
    variables = {"PATH": PATH_IN_L1, "HOME": "/root", "TERM": "dumb",
                 "LANG": "C.UTF-8", "POPEK_NESTED": "1",
                 "POPEK_NESTED_OUT": str(out)}
    for k, v in (env or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise HarnessError("nested: bad environment variable name %r" % k)
        variables[k] = str(v)
    script = ["# written by tests/nested/harness.py"]
    script += ["export %s=%s" % (k, shlex.quote(v))
               for k, v in variables.items()]
    script.append("cd %s || exit 125" % shlex.quote(cwd))
    script.append("exec %s" % " ".join(shlex.quote(a) for a in argv))
    (meta / "cmd.sh").write_text("\n".join(script) + "\n")

    console = meta / "console.log"
    qemu_log = meta / "qemu.log"
    qemu_argv = [
        ready.qemu, "-accel", "tcg,thread=multi", "-M", "q35", "-cpu", "max",
        "-smp", str(cpus), "-m", str(memory_mb),
        "-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
        "-serial", "file:%s" % console,
        "-kernel", str(ready.vmlinuz), "-initrd", str(ready.initramfs),
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,"
                   "readonly=on,multidevs=remap",
        "-virtfs", "local,path=%s,mount_tag=out,security_model=none,"
                   "multidevs=remap" % str(out).replace(",", ",,"),
        # loglevel=5: warnings reach the console, so an L1 soft lockup
        # comes with its backtrace (printed at KERN_WARNING).
        "-append", "console=ttyS0 panic=-1 quiet loglevel=5",
    ]

    followers = [_Follower(meta / "stdout", stdout_sink),
                 _Follower(meta / "stderr", stderr_sink)]
    start_wall = time.time()
    start = time.monotonic()
    deadline = start + timeout
    timed_out = False
    with open(qemu_log, "wb") as qlog:
        proc = subprocess.Popen(qemu_argv, stdin=subprocess.DEVNULL,
                                stdout=qlog, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_preexec)
    with _lock:
        _live_groups.add(proc.pid)
    try:
        while True:
            try:
                proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            for f in followers:
                f.poll()
            if time.monotonic() >= deadline:
                timed_out = True
                break
    finally:
        _kill_group(proc.pid)
        proc.wait()
        with _lock:
            _live_groups.discard(proc.pid)
    elapsed = time.monotonic() - start
    for f in followers:
        f.poll()

    def mtime(name):
        try:
            return (meta / name).stat().st_mtime - start_wall
        except FileNotFoundError:
            return None

    boot = mtime("started")
    done = mtime("status")
    res = Result(cmd=cmd, stdout=_read(meta / "stdout"),
                 stderr=_read(meta / "stderr"), outdir=out,
                 boot_seconds=boot, elapsed=elapsed,
                 command_seconds=(done - boot) if (boot is not None and
                                                   done is not None) else None,
                 console=_read(console), cleanup=cleanup)
    if timed_out:
        res.timed_out = True
        res.returncode = TIMEOUT_STATUS
        res.message = "nested: command timed out after %g s" % timeout
        return res
    status = _read(meta / "status").strip()
    if not status.isdigit():
        why = _read(meta / "init-error").strip()
        raise HarnessError(
            "nested: L1 did not report an exit status (QEMU exited with %s "
            "after %.1f s)%s\n--- QEMU\n%s\n--- console (tail)\n%s" % (
                proc.returncode, elapsed,
                "\n--- L1 init\n" + why if why else "",
                _read(qemu_log).strip()[-3000:] or "(nothing)",
                "\n".join(res.console.splitlines()[-40:]) or "(nothing)"))
    res.returncode = int(status)
    return res


# ---- the kvm-probe -----------------------------------------------------------

def kvm_probe_path():
    """Path of a kvm-probe binary built from the current source.

    $POPEK_KVM_PROBE if set; else <repo>/build/tests/nested/kvm-probe if it
    is newer than kvm-probe.c; else compiled with gcc into the cache dir.
    """
    env = os.environ.get("POPEK_KVM_PROBE")
    if env:
        if not os.access(env, os.X_OK):
            raise HarnessError("nested: POPEK_KVM_PROBE=%s is not executable"
                               % env)
        return pathlib.Path(env).resolve()
    built = REPO_ROOT / "build" / "tests" / "nested" / "kvm-probe"
    src_mtime = PROBE_SOURCE.stat().st_mtime
    if built.exists() and built.stat().st_mtime >= src_mtime:
        return built
    digest = hashlib.sha256(PROBE_SOURCE.read_bytes()).hexdigest()[:16]
    target = cache_dir() / ("kvm-probe-%s" % digest)
    if not target.exists():
        if not shutil.which("gcc"):
            _apt_install([PACKAGES["gcc"]])
        tmp = target.with_name(target.name + ".tmp.%d" % os.getpid())
        r = subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra",
                            "-Werror", str(PROBE_SOURCE), "-o", str(tmp)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        if r.returncode != 0:
            raise HarnessError("nested: compiling kvm-probe failed:\n"
                               + r.stdout)
        os.replace(tmp, target)
    return target


def parse_probe_output(text):
    """Parse kvm-probe output into a dict.

    {'ns_per_iteration': float or None, 'iterations': int or None,
     'ring3_int_ok': bool or None, 'ring3_int': str or None}
    """
    info = {"ns_per_iteration": None, "iterations": None,
            "ring3_int_ok": None, "ring3_int": None}
    m = re.search(r"^ring0-loop: iterations=(\d+) ns-per-iteration=([\d.]+)",
                  text, re.M)
    if m:
        info["iterations"] = int(m.group(1))
        info["ns_per_iteration"] = float(m.group(2))
    m = re.search(r"^ring3-int: (.*)$", text, re.M)
    if m:
        info["ring3_int"] = m.group(1).strip()
        info["ring3_int_ok"] = info["ring3_int"] == "ok"
    return info


def probe_host(timeout=60):
    """Run kvm-probe on the host; returns parse_probe_output() + 'output'.

    Raises HarnessError if the host has no usable /dev/kvm or the probe
    fails to run.
    """
    if not os.path.exists("/dev/kvm"):
        raise HarnessError("nested: the host has no /dev/kvm")
    probe = kvm_probe_path()
    try:
        r = subprocess.run([str(probe)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise HarnessError("nested: kvm-probe on the host took more than "
                           "%d s" % timeout)
    info = parse_probe_output(r.stdout)
    info["output"] = r.stdout
    if r.returncode != 0 or info["ns_per_iteration"] is None:
        raise HarnessError("nested: kvm-probe on the host failed (status %d):"
                           "\n%s" % (r.returncode, r.stdout))
    return info


_faithful = None


def host_kvm_is_faithful():
    """Can system tests boot guest kernels on the host's /dev/kvm directly?

    True when kvm-probe on the host finds both:
      - ring-0 code running at hardware speed: the real-mode
        "dec ecx; jnz" loop takes < FAITHFUL_MAX_NS_PER_ITERATION (100) ns
        per iteration (hardware: < 1 ns; KVM in L1 under TCG: ~2 ns;
        a host that emulates ring 0: ~1000 ns), and
      - a ring 3 -> ring 0 transition ("int 0x80" from CPL 3 through an
        IDT gate) reaching its ring-0 handler.
    False if there is no /dev/kvm or the probe cannot run. Cached per
    process; $POPEK_HOST_KVM_FAITHFUL=1/0 overrides.
    """
    global _faithful
    if _faithful is not None:
        return _faithful
    forced = os.environ.get("POPEK_HOST_KVM_FAITHFUL")
    if forced in ("0", "1"):
        _faithful = forced == "1"
        return _faithful
    try:
        info = probe_host()
        _faithful = bool(info["ns_per_iteration"] <
                         FAITHFUL_MAX_NS_PER_ITERATION and info["ring3_int_ok"])
    except (HarnessError, OSError):
        _faithful = False
    return _faithful
