"""Bad user input: one clear line on stderr, a non-zero status, and no VM
started (nothing from a guest on stdout)."""
import os
import struct

import pytest

from conftest import run

pytestmark = pytest.mark.direct

USAGE = 2


def expect_error(p, *needles, status=USAGE):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("popek: error: "), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]
    assert "popek-guest" not in p.stdout


@pytest.mark.parametrize("args,needles", [
    (["--cpus", "0"], ["--cpus 0", "between 1 and"]),
    (["--cpus", "many"], ["--cpus many", "not a number"]),
    (["--memory", "lots"], ["--memory lots", "not a size"]),
    (["--memory", "12Q"], ["--memory 12Q"]),
    (["--memory", "1M"], ["at least 2M"]),
    (["--memory", "1000T"], ["--memory", "does not fit"]),
    (["--kernel", "/nonexistent/vmlinuz"], ["/nonexistent/vmlinuz", "No such file"]),
    (["--kernel", "/etc"], ["/etc", "not a regular file"]),
    (["--kernel", "/etc/os-release"], ["not a loadable kernel"]),
    (["--bogus"], ["--bogus", "unknown option"]),
])
def test_bad_options(popek, kvm, args, needles):
    expect_error(run([popek, "run", *args]), *needles)


def test_truncated_kernel(popek, kvm, guest_dir, tmp_path):
    image = (guest_dir / "popek-guest.elf").read_bytes()
    for cut in (16, 64, 200, len(image) // 2):
        k = tmp_path / f"cut{cut}"
        k.write_bytes(image[:cut])
        expect_error(run([popek, "run", "--kernel", k]), str(k))


def test_unreadable_kernel(popek, kvm, guest_dir, tmp_path):
    k = tmp_path / "secret.elf"
    k.write_bytes((guest_dir / "popek-guest.elf").read_bytes())
    k.chmod(0)
    tmp_path.chmod(0o755)
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             popek, "run", "--kernel", k])
    expect_error(p, str(k), "Permission denied")


def test_no_kvm_device(popek):
    # A private /dev without kvm in it.
    p = run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs none /dev && exec {popek} run"])
    expect_error(p, "/dev/kvm", "no such device")


def test_kvm_permission_denied(popek, kvm):
    assert os.stat("/dev/kvm").st_mode & 0o006 == 0, "/dev/kvm is world-accessible here"
    p = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", popek, "run"])
    expect_error(p, "/dev/kvm", "permission denied")


def test_command_line_too_long(popek, kvm):
    expect_error(run([popek, "run", "--cmdline", "x" * 5000]), "command line")


def test_help_and_version(popek):
    p = run([popek, "run", "--help"])
    assert p.returncode == 0 and "--cpus N" in p.stdout and "--memory SIZE" in p.stdout
    p = run([popek, "--version"])
    assert p.returncode == 0 and p.stdout.startswith("popek ")
    p = run([popek, "frobnicate"])
    assert p.returncode == USAGE and "unknown command" in p.stderr


# A synthetic Linux bzImage (boot.rst "The Real-Mode Kernel Header"): the
# header fields a loader reads, and a protected-mode kernel whose 64-bit
# entry (load address + 0x200) checks boot_params.type_of_loader through
# RSI, prints "64" on COM1 and exits through the debug-exit port with
# 0x21 if RAX can hold a 64-bit value (long mode), 0x10 if RSI is wrong.
ENTRY64 = bytes.fromhex(
    "0fb68610020000"   # movzbl 0x210(%rsi),%eax
    "3cff"             # cmp $0xff,%al
    "7520"             # jne fail
    "b036" "66baf803" "ee"  # mov $'6',%al; mov $0x3f8,%dx; out %al,(%dx)
    "b034" "ee"        # mov $'4',%al; out
    "b00a" "ee"        # mov $10,%al; out
    "48b80000000001000000"  # movabs $0x100000000,%rax
    "48c1e820"         # shr $32,%rax
    "0420"             # add $0x20,%al
    "e6f4" "f4"        # out %al,$0xf4; hlt
    "b010" "e6f4" "f4")  # fail: mov $0x10,%al; out %al,$0xf4; hlt
BZ_SETUP_SECTS = 3
BZ_INIT_SIZE = 1 << 20
BZ_STATUS_OK = ((0x21 << 1) | 1) & 0xff


def bzimage(version=0x020f, cmdline_size=2047, xloadflags=0x3, magic=b"HdrS"):
    setup = bytearray((BZ_SETUP_SECTS + 1) * 512)
    kernel = bytearray(0x1000)
    kernel[0x200:0x200 + len(ENTRY64)] = ENTRY64
    setup[0x1f1] = BZ_SETUP_SECTS
    struct.pack_into("<I", setup, 0x1f4, len(kernel) // 16)     # syssize
    struct.pack_into("<H", setup, 0x1fe, 0xaa55)                # boot_flag
    setup[0x200:0x202] = bytes([0xeb, 0x6a])                    # header ends at 0x26c
    setup[0x202:0x206] = magic
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = 0x01                                         # LOADED_HIGH
    struct.pack_into("<I", setup, 0x22c, 0x7fffffff)            # initrd_addr_max
    struct.pack_into("<I", setup, 0x230, 0x200000)              # kernel_alignment
    setup[0x234] = 1                                            # relocatable_kernel
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<Q", setup, 0x258, 16 << 20)              # pref_address
    struct.pack_into("<I", setup, 0x260, BZ_INIT_SIZE)          # init_size
    return bytes(setup + kernel)


def test_bzimage_control(popek, kvm, tmp_path):
    """The unmodified synthetic bzImage boots, so each error below is about
    what its case changed: entered in 64-bit mode with RSI = boot_params."""
    k = tmp_path / "bzImage"
    k.write_bytes(bzimage())
    rd = tmp_path / "initrd"
    rd.write_bytes(b"\x07" * 5000)
    p = run([popek, "run", "--memory", "64M", "--kernel", k, "--initrd", rd,
             "--cmdline", "console=ttyS0"], timeout=60)
    assert p.returncode == BZ_STATUS_OK, (p.returncode, p.stdout, p.stderr)
    assert "64" in p.stdout


@pytest.mark.parametrize("image,args,needles", [
    (bzimage()[:-100], [], ["bzImage truncated: setup says 6144 bytes, file has 6044"]),
    (bzimage()[:0x240], [], ["bzImage truncated", "setup header ends at 0x26c"]),
    (bzimage(magic=b"HdrX"), [], ["not a bzImage: no HdrS magic"]),
    (bzimage(version=0x0205), [], ["bzImage protocol 2.05 is too old"]),
    (bzimage(xloadflags=0), [], ["no 64-bit entry point"]),
    (bzimage(cmdline_size=255), ["--cmdline", "x" * 300],
     ["kernel command line is 300 bytes, this kernel takes at most 255"]),
    (bzimage(), ["--memory", "16M"], ["pref_address 0x1000000", "more --memory"]),
], ids=["truncated-kernel", "truncated-header", "magic", "old-protocol", "no-64-bit-entry",
        "cmdline-size", "no-room"])
def test_bad_bzimage(popek, kvm, tmp_path, image, args, needles):
    k = tmp_path / "bzImage"
    k.write_bytes(image)
    expect_error(run([popek, "run", "--memory", "64M", "--kernel", k, *args]), str(k), *needles)


def test_bad_initrd(popek, kvm, tmp_path):
    k = tmp_path / "bzImage"
    k.write_bytes(bzimage())
    base = [popek, "run", "--memory", "64M", "--kernel", k]
    expect_error(run([*base, "--initrd", "/nonexistent/initrd.img"]),
                 "--initrd /nonexistent/initrd.img", "No such file")
    expect_error(run([*base, "--initrd", "/etc"]), "--initrd /etc", "not a regular file")
    expect_error(run([*base, "--initrd", ""]), "--initrd: empty")
    # Larger than the guest's RAM: refused before it is read (sparse file).
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(80 << 20)
    expect_error(run([*base, "--initrd", big]), f"--initrd {big}",
                 "do not fit in 64 MiB of guest memory")
    # Fits the RAM, but neither above the kernel at 16 MiB nor below it.
    mid = tmp_path / "mid.img"
    with open(mid, "wb") as f:
        f.truncate(50 << 20)
    expect_error(run([*base, "--initrd", mid]), "initrd (50 MiB) does not fit below 0x4000000")
