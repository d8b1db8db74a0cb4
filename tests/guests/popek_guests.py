# SPDX-License-Identifier: GPL-2.0-only
"""The Linux test guests: a test initramfs and the PVH vmlinux of Debian's
stock cloud kernel (see docs/linux-guests.md).

    import sys; sys.path.insert(0, "<repo>/tests/guests"); import popek_guests
    k = popek_guests.cloud_kernel()        # .version .bzimage .modules_dir
    popek_guests.initramfs()               # -> pathlib.Path (cached)
    popek_guests.initramfs(binaries=["fio"])  # plus host programs and their libraries
    popek_guests.vmlinux()                 # -> pathlib.Path (cached)
    popek_guests.parse_marker(text)        # POPEK-LINUX-OK fields, or None
    popek_guests.init_start_uptimes(text)  # [float] of POPEK-INIT-START lines
    popek_guests.script_cmdline(script)    # cmdline for popek.test=exec
    popek_guests.script_status(text)       # POPEK-SCRIPT-STATUS=, or None

Both images are built on the host and cached under ~/.cache/popek-guests/
($POPEK_GUESTS_CACHE), keyed by the kernel, this file and the inputs; a
cache hit writes nothing, so the same call works inside the nested
harness's L1 (host / read-only), where the image must already exist.

Environment: POPEK_GUEST_KERNEL (kernel version, default the newest
/boot/vmlinuz-*-cloud-amd64 with modules), POPEK_GUESTS_CACHE.
"""

import fcntl
import gzip
import hashlib
import io
import lzma
import os
import pathlib
import re
import shutil
import stat
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent

# Modules /init loads when none are named: what later issues need (virtio
# over PCI and MMIO, pvpanic for the panic test). Missing ones are skipped.
DEFAULT_MODULES = ["virtio_pci", "virtio_mmio", "virtio_blk", "virtio_net",
                   "virtio_rng", "virtio_balloon", "pvpanic_mmio"]

MODES = ("marker", "shell", "reboot", "panic", "exec")

INIT = r"""#!/bin/busybox sh
# /init of popek's Linux test guest (written by tests/guests/build-initramfs)
/bin/busybox mount -t proc proc /proc
read INIT_UPTIME _ </proc/uptime
echo "POPEK-INIT-START uptime=$INIT_UPTIME"
export PATH=/bin:/sbin HOME=/ TERM=linux
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts 2>/dev/null

while read -r mod; do
    [ -n "$mod" ] || continue
    out=$(insmod "/lib/modules/$mod.ko" 2>&1) || echo "popek-init: insmod $mod failed: $out"
done </modules.order

MODE=marker
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        popek.test=*) MODE="${arg#popek.test=}" ;;
    esac
done

stop() {
    poweroff -f
    sleep 10
    echo "popek-init: poweroff -f returned"
    exit 1
}

case "$MODE" in
marker)
    read UPTIME _ </proc/uptime
    MEMTOTAL=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    echo "POPEK-LINUX-OK cpus=$(nproc) online=$(cat /sys/devices/system/cpu/online) memtotal-kb=$MEMTOTAL uptime=$UPTIME init-uptime=$INIT_UPTIME"
    stop
    ;;
shell)
    echo "popek-init: shell on the console; exit or poweroff -f to stop"
    export PS1='popek# '
    setsid cttyhack sh
    stop
    ;;
reboot)
    echo "popek-init: reboot -f"
    reboot -f
    sleep 10
    echo "popek-init: reboot -f returned"
    exit 1
    ;;
panic)
    grep -q '^pvpanic_mmio ' /proc/modules || echo "popek-init: pvpanic_mmio is not loaded"
    echo "popek-init: panicking through /proc/sysrq-trigger"
    echo c >/proc/sysrq-trigger
    sleep 10
    exit 1
    ;;
exec)
    # The script comes base64-encoded in popek.script= (script_cmdline()).
    mount -t tmpfs tmpfs /tmp
    SCRIPT=
    for arg in $(cat /proc/cmdline); do
        case "$arg" in
            popek.script=*) SCRIPT="${arg#popek.script=}" ;;
        esac
    done
    if [ -z "$SCRIPT" ]; then
        echo "POPEK-INIT-ERROR popek.test=exec without popek.script="
        echo "POPEK-SCRIPT-STATUS=127"
    elif ! echo "$SCRIPT" | base64 -d >/tmp/popek-script.sh; then
        echo "POPEK-INIT-ERROR popek.script= is not valid base64"
        echo "POPEK-SCRIPT-STATUS=127"
    else
        sh /tmp/popek-script.sh
        echo "POPEK-SCRIPT-STATUS=$?"
    fi
    stop
    ;;
*)
    echo "POPEK-INIT-ERROR unknown popek.test=$MODE (marker, shell, reboot, panic, exec)"
    stop
    ;;
esac
"""


class GuestError(Exception):
    """A test guest could not be built (one clear message)."""


def log(msg):
    sys.stderr.write("popek-guests: %s\n" % msg)
    sys.stderr.flush()


# ---- the kernel ------------------------------------------------------------

def _version_key(v):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", v)]


class Kernel:
    def __init__(self, version):
        self.version = version
        self.bzimage = pathlib.Path("/boot/vmlinuz-%s" % version)
        self.modules_dir = pathlib.Path("/lib/modules/%s" % version)

    def __repr__(self):
        return "Kernel(%r)" % self.version


def cloud_kernels():
    """Versions of the installed cloud kernels with modules, newest first."""
    found = []
    for p in pathlib.Path("/boot").glob("vmlinuz-*-cloud-amd64"):
        ver = p.name[len("vmlinuz-"):]
        if (pathlib.Path("/lib/modules") / ver / "modules.dep").is_file():
            found.append(ver)
    return sorted(found, key=_version_key, reverse=True)


def cloud_kernel(version=None):
    """The guest kernel: version, $POPEK_GUEST_KERNEL or the newest cloud
    kernel; installs linux-image-cloud-amd64 when there is none."""
    version = version or os.environ.get("POPEK_GUEST_KERNEL")
    if version:
        k = Kernel(version)
        if not k.bzimage.is_file() or not (k.modules_dir / "modules.dep").is_file():
            raise GuestError("no /boot/vmlinuz-%s with modules in %s"
                             % (version, k.modules_dir))
        return k
    if not cloud_kernels():
        apt_install(["linux-image-cloud-amd64"])
    vers = cloud_kernels()
    if not vers:
        raise GuestError("no cloud kernel (/boot/vmlinuz-*-cloud-amd64) with "
                         "modules, even after installing linux-image-cloud-amd64")
    return Kernel(vers[0])


# ---- packages and the cache --------------------------------------------------

_apt_updated = False


def apt_install(packages):
    global _apt_updated
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise GuestError("missing Debian packages: install them with "
                         "apt-get install %s" % " ".join(packages))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = [] if _apt_updated else [["apt-get", "update", "-q"]]
    steps.append(["apt-get", "install", "-y", "-q", "--no-install-recommends"] + packages)
    log("installing %s" % " ".join(packages))
    for argv in steps:
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise GuestError("cannot install %s: %s failed:\n%s" % (
                " ".join(packages), " ".join(argv),
                "\n".join(r.stdout.splitlines()[-15:])))
        if argv[1] == "update":
            _apt_updated = True


def cache_dir():
    d = os.environ.get("POPEK_GUESTS_CACHE")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "popek-guests")
    return pathlib.Path(d)


def _stat_key(h, *paths):
    for p in paths:
        st = os.stat(p)
        h.update(("%s:%d:%d\n" % (p, st.st_size, st.st_mtime_ns)).encode())


def _cached(name, build):
    """Returns cache_dir()/name, calling build(tmp_path) to make it if it is
    missing. A hit writes nothing (works on a read-only cache)."""
    d = cache_dir()
    target = d / name
    if target.exists():
        return target
    try:
        d.mkdir(parents=True, exist_ok=True)
        lockf = open(d / ".lock", "w")
    except OSError as e:
        raise GuestError("%s is not in the cache and the cache %s is not "
                         "writable (%s): build it on the host first" % (name, d, e))
    with lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if target.exists():
            return target
        tmp = d / (".%s.tmp.%d" % (name, os.getpid()))
        try:
            build(tmp)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        # Other keys of the same kind (older builders, other module lists)
        # go when they have not been rebuilt for a week.
        prefix = name.split("-")[0] + "-"
        week_ago = time.time() - 7 * 86400
        for old in d.glob(prefix + "*"):
            if old != target and old.is_file() and old.stat().st_mtime < week_ago:
                old.unlink(missing_ok=True)
    return target


# ---- the initramfs ---------------------------------------------------------------

class Cpio:
    """newc cpio writer (no cpio tool needed)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08x" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self):
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name):
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, perm=0o644):
        self._entry(name, stat.S_IFREG | perm, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor, perm=0o600):
        self._entry(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def is_static_elf(path):
    try:
        with open(path, "rb") as f:
            hdr = f.read(64)
            if hdr[:4] != b"\x7fELF" or hdr[4] != 2:
                return False
            phoff = int.from_bytes(hdr[32:40], "little")
            phentsize = int.from_bytes(hdr[54:56], "little")
            phnum = int.from_bytes(hdr[56:58], "little")
            f.seek(phoff)
            for _ in range(phnum):
                if int.from_bytes(f.read(phentsize)[0:4], "little") == 3:  # PT_INTERP
                    return False
        return True
    except OSError:
        return False


def busybox_path():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if is_static_elf(p):
            return p
    apt_install(["busybox-static"])
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if is_static_elf(p):
            return p
    raise GuestError("no static busybox even after installing busybox-static")


def _modinfo(kver, field, module):
    r = subprocess.run(["modinfo", "-k", kver, "-F", field, module], text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.stdout.strip() if r.returncode == 0 else None


def resolve_modules(kver, names, required=False):
    """[(name, path)] in load order (dependencies first). Modules built into
    the kernel need nothing; missing ones are skipped with a note on stderr,
    or raise GuestError when required."""
    if not shutil.which("modinfo"):
        os.environ["PATH"] = os.environ.get("PATH", "") + ":/sbin:/usr/sbin"
        if not shutil.which("modinfo"):
            apt_install(["kmod"])
    order, seen = [], {}

    def visit(name, stack):
        key = name.replace("-", "_")
        if key in seen:
            return seen[key]
        if key in stack:
            raise GuestError("module dependency cycle at %s" % name)
        path = _modinfo(kver, "filename", name)
        if path == "(builtin)":
            seen[key] = True
            return True
        if not path or not path.startswith("/"):
            seen[key] = False
            return False
        deps = _modinfo(kver, "depends", name) or ""
        for dep in [d for d in deps.split(",") if d]:
            if not visit(dep, stack | {key}):
                log("module %s needs %s, which is missing" % (name, dep))
                seen[key] = False
                return False
        order.append((key, path))
        seen[key] = True
        return True

    for n in names:
        if not visit(n, frozenset()):
            if required:
                raise GuestError("kernel %s has no module %s" % (kver, n))
            log("kernel %s has no module %s: left out" % (kver, n))
    return order


def read_module(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        if not shutil.which("zstd"):
            apt_install(["zstd"])
        return subprocess.run(["zstd", "-dc", path], check=True,
                              stdout=subprocess.PIPE).stdout
    return data


def build_initramfs_image(kernel, modules, busybox, compress=None, extra_files=()):
    """The image's bytes and the module list it holds. extra_files:
    [(path in the image, host file)] added as they are (binary_files())."""
    applets = subprocess.run([busybox, "--list"], check=True, text=True,
                             stdout=subprocess.PIPE).stdout.split()
    mods = resolve_modules(kernel.version, modules)
    c = Cpio()
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "lib",
              "lib/modules"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3, 0o666)
    with open(busybox, "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    for a in applets:
        if a != "busybox" and "/" not in a:
            c.symlink("bin/" + a, "busybox")
    c.file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
    for name, path in mods:
        c.file("lib/modules/%s.ko" % name, read_module(path))
    c.file("modules.order", "".join(n + "\n" for n, _ in mods).encode())
    if extra_files:
        dirs = {"bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "lib",
                "lib/modules"}
        for dest, src in extra_files:
            parts = dest.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    c.dir(d)
                    dirs.add(d)
            with open(src, "rb") as f:
                c.file(dest, f.read(), 0o755)
    c.file("init", INIT.encode(), 0o755)
    data = c.finish()
    if compress == "gzip":
        data = gzip.compress(data, compresslevel=6, mtime=0)
    return data, [n for n, _ in mods]


def initramfs(modules=None, kernel=None, compress=None, binaries=None):
    """Path of the (cached) test initramfs for the cloud kernel with the
    given modules (default DEFAULT_MODULES) and compression (None or
    "gzip"). binaries: host programs (names on $PATH or paths) to add as
    /bin/NAME with the shared libraries they need (binary_files()); the
    image is then larger (its own cache entry)."""
    kernel = kernel or cloud_kernel()
    modules = list(DEFAULT_MODULES if modules is None else modules)
    if compress not in (None, "gzip"):
        raise GuestError("unknown compression %r (none or gzip)" % compress)
    busybox = busybox_path()
    extra = binary_files(binaries) if binaries else []
    h = hashlib.sha256()
    h.update(pathlib.Path(__file__).read_bytes())
    h.update(("%s\n%s\n%s\n" % (kernel.version, ",".join(modules), compress)).encode())
    _stat_key(h, kernel.modules_dir / "modules.dep", busybox)
    for dest, src in extra:
        h.update(("%s<-" % dest).encode())
        _stat_key(h, src)
    name = "initramfs-%s-%s.cpio%s" % (kernel.version, h.hexdigest()[:16],
                                        ".gz" if compress else "")

    def build(tmp):
        log("building the test initramfs for %s" % kernel.version)
        data, mods = build_initramfs_image(kernel, modules, busybox, compress, extra)
        tmp.write_bytes(data)
        log("%d modules (%s), %d bytes" % (len(mods), " ".join(mods), len(data)))
        if extra:
            log("%d extra files (%s and their libraries)" % (len(extra), " ".join(binaries)))

    return _cached(name, build)


# Debian packages of programs binary_files() may be asked for, installed
# when the program is missing.
PROGRAM_PACKAGES = {"fio": "fio", "iperf3": "iperf3", "strace": "strace"}


def _ldd_paths(program):
    """The absolute paths ldd names for program: its libraries and its ELF
    interpreter."""
    r = subprocess.run(["ldd", program], text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    if r.returncode != 0:
        if "not a dynamic executable" in r.stdout:
            return []
        raise GuestError("ldd %s failed: %s" % (program, r.stdout.strip()))
    paths = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise GuestError("%s needs %s, which is not installed" % (
                program, line.split()[0]))
        m = re.match(r"\S+ => (/\S+) \(0x", line) or re.match(r"(/\S+) \(0x", line)
        if m:
            paths.append(m.group(1))
    return paths


def binary_files(programs):
    """[(path in the image, host file)] for host programs (names on $PATH
    or absolute paths) and every shared library and ELF interpreter they
    need, found with ldd. A program becomes /bin/NAME; a library keeps the
    path ldd names (symbolic links followed: the image holds a file there),
    where the guest's dynamic loader finds it without ld.so.cache. Missing
    programs with a known Debian package (PROGRAM_PACKAGES) are installed."""
    out, seen = [], set()
    for prog in programs:
        path = prog if "/" in prog else shutil.which(prog)
        if not path and prog in PROGRAM_PACKAGES:
            apt_install([PROGRAM_PACKAGES[prog]])
            path = shutil.which(prog)
        if not path or not os.path.isfile(path):
            raise GuestError("no program %s on this host" % prog)
        dest = "bin/" + os.path.basename(path)
        if dest not in seen:
            seen.add(dest)
            out.append((dest, os.path.realpath(path)))
        for lib in _ldd_paths(path):
            dest = os.path.normpath(lib).lstrip("/")
            if dest not in seen:
                seen.add(dest)
                out.append((dest, os.path.realpath(lib)))
    return out


# ---- the PVH vmlinux -------------------------------------------------------------

# magic -> (format, decompressor argv reading stdin, Debian package)
MAGICS = [
    (b"\x02\x21\x4c\x18", "lz4", ["lz4", "-dc"], "lz4"),
    (b"\x1f\x8b\x08", "gzip", ["gzip", "-dc"], "gzip"),
    (b"\xfd7zXZ\x00", "xz", ["xz", "-dc"], "xz-utils"),
    (b"\x28\xb5\x2f\xfd", "zstd", ["zstd", "-dc"], "zstd"),
]

XEN_ELFNOTE_PHYS32_ENTRY = 18


def elf_notes(data):
    """[(name, type, desc)] of an ELF64's PT_NOTE segments."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    le = lambda off, n: int.from_bytes(data[off:off + n], "little")
    phoff, phentsize, phnum = le(32, 8), le(54, 2), le(56, 2)
    notes = []
    for i in range(phnum):
        ph = phoff + i * phentsize
        if le(ph, 4) != 4:  # PT_NOTE
            continue
        off, size = le(ph + 8, 8), le(ph + 32, 8)
        pos, end = off, off + size
        while pos + 12 <= end:
            namesz, descsz, ntype = le(pos, 4), le(pos + 4, 4), le(pos + 8, 4)
            name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            dpos = pos + 12 + ((namesz + 3) & ~3)
            notes.append((name, ntype, data[dpos:dpos + descsz]))
            pos = dpos + ((descsz + 3) & ~3)
    return notes


def elf_complete(data):
    """True if data is a whole ELF64 (headers and section table inside)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:
        return False
    le = lambda off, n: int.from_bytes(data[off:off + n], "little")
    shoff, shentsize, shnum = le(40, 8), le(58, 2), le(60, 2)
    phoff, phentsize, phnum = le(32, 8), le(54, 2), le(56, 2)
    return (phoff + phentsize * phnum <= len(data) and
            shoff + shentsize * shnum <= len(data))


def pvh_entry(data):
    """The 32-bit PVH entry point of an ELF, or None."""
    for name, ntype, desc in elf_notes(data) or []:
        if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY and len(desc) >= 4:
            return int.from_bytes(desc[:4], "little")
    return None


def _candidates(image):
    """(offset, format, argv, package), the setup header's payload first."""
    out = []
    if len(image) > 0x250 and image[0x202:0x206] == b"HdrS":
        setup_sects = image[0x1f1] or 4
        payload = (setup_sects + 1) * 512 + int.from_bytes(image[0x248:0x24c], "little")
        for magic, fmt, argv, pkg in MAGICS:
            if image[payload:payload + len(magic)] == magic:
                out.append((payload, fmt, argv, pkg))
    for magic, fmt, argv, pkg in MAGICS:
        pos = image.find(magic)
        while pos >= 0:
            if (pos, fmt, argv, pkg) not in out:
                out.append((pos, fmt, argv, pkg))
            pos = image.find(magic, pos + 1)
    return out


def extract_vmlinux_data(bzimage):
    """The uncompressed ELF vmlinux inside a bzImage (bytes)."""
    image = pathlib.Path(bzimage).read_bytes()
    tried = []
    for off, fmt, argv, pkg in _candidates(image):
        if not shutil.which(argv[0]):
            apt_install([pkg])
        # The decompressors may complain about the bytes after the stream
        # (the kernel appends its size): judge by the output.
        r = subprocess.run(argv, input=image[off:], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        if elf_complete(r.stdout):
            return r.stdout, fmt, off
        tried.append("%s at %#x" % (fmt, off))
    raise GuestError("%s: no compressed ELF found (tried %s)" % (
        bzimage, ", ".join(tried) or "nothing: no known magic"))


def vmlinux(kernel=None):
    """Path of the (cached) ELF vmlinux of the cloud kernel, checked to have
    a PVH entry note."""
    kernel = kernel or cloud_kernel()
    h = hashlib.sha256()
    h.update(pathlib.Path(__file__).read_bytes())
    _stat_key(h, kernel.bzimage)
    name = "vmlinux-%s-%s" % (kernel.version, h.hexdigest()[:16])

    def build(tmp):
        log("extracting the ELF vmlinux from %s" % kernel.bzimage)
        data, fmt, off = extract_vmlinux_data(kernel.bzimage)
        entry = pvh_entry(data)
        if entry is None:
            raise GuestError("%s: the vmlinux (%s at %#x) has no PVH note "
                             "(Xen, type %d): is CONFIG_PVH set?" % (
                                 kernel.bzimage, fmt, off, XEN_ELFNOTE_PHYS32_ENTRY))
        tmp.write_bytes(data)
        tmp.chmod(0o644)
        log("%s stream at %#x, %d bytes, PVH entry %#x" % (fmt, off, len(data), entry))

    return _cached(name, build)


# ---- reading what the guest prints -------------------------------------------------

MARKER_RE = re.compile(
    r"POPEK-LINUX-OK cpus=(?P<cpus>\d+) online=(?P<online>\S*) "
    r"memtotal-kb=(?P<memtotal_kb>\d+) uptime=(?P<uptime>[\d.]+) "
    r"init-uptime=(?P<init_uptime>[\d.]+)")
INIT_START_RE = re.compile(r"POPEK-INIT-START uptime=([\d.]+)")


def parse_marker(text):
    """The fields of the last POPEK-LINUX-OK line as a dict (cpus,
    memtotal_kb ints; uptime, init_uptime floats; online str), or None."""
    found = list(MARKER_RE.finditer(text))
    if not found:
        return None
    m = found[-1].groupdict()
    return {"cpus": int(m["cpus"]), "online": m["online"],
            "memtotal_kb": int(m["memtotal_kb"]), "uptime": float(m["uptime"]),
            "init_uptime": float(m["init_uptime"])}


def init_start_uptimes(text):
    return [float(x) for x in INIT_START_RE.findall(text)]


# ---- exec mode -------------------------------------------------------------------

SCRIPT_STATUS_RE = re.compile(r"POPEK-SCRIPT-STATUS=(\d+)")
# x86 Linux keeps at most COMMAND_LINE_SIZE (2048) bytes of the command line.
CMDLINE_MAX = 2047


def script_cmdline(script, console="console=ttyS0"):
    """The kernel command line that makes /init run script (a shell script,
    str) with sh, print POPEK-SCRIPT-STATUS=<rc> and power off."""
    import base64
    enc = base64.b64encode(script.encode()).decode()
    cmdline = "%s popek.test=exec popek.script=%s" % (console, enc)
    if len(cmdline) > CMDLINE_MAX:
        raise GuestError("the script is too long for the kernel command line "
                         "(%d bytes encoded, at most %d in all)" % (len(cmdline), CMDLINE_MAX))
    return cmdline


def script_status(text):
    """The status of the exec-mode script (the last POPEK-SCRIPT-STATUS=),
    or None when it did not finish."""
    found = SCRIPT_STATUS_RE.findall(text)
    return int(found[-1]) if found else None
