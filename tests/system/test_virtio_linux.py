"""popek's virtio devices seen by Debian's stock cloud kernel (the test
initramfs in exec mode, tests/guests/popek_guests.py): virtio-blk (two
disks, one read-only with a serial), virtio-rng, virtio-net (a ping over a
tap in a network namespace) and virtio-balloon (memory given back to the
host, tests/guests/balloon_check.py).

Every popek invocation runs in one L1 boot (faithful.run_batch). The disk
images are made on the host under build/test-virtio/ (L1 sees the host's /
read-only and masks /tmp); each L1 command copies them to a scratch
directory, runs popek on the copies and prints their hashes afterwards."""
import hashlib
import pathlib
import re
import shlex
import shutil
import sys

import pytest

import faithful
from faithful import describe, field

ROOT = pathlib.Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests"
sys.path.insert(0, str(GUESTS))
import popek_guests  # noqa: E402

pytestmark = pytest.mark.nested

MiB = 1 << 20
PY = "/usr/bin/python3"
BOOT_TIMEOUT = 150
DISK_SIZE = 16 * MiB
# What the guest writes to vda: 8 KiB at sector 9999 (not page aligned).
PATTERN = (b"popek-virtio-blk-pattern\n" * 400)[:8192]
PATTERN_SECTOR = 9999
PATTERN_OFFSET = PATTERN_SECTOR * 512
SERIAL = "RO1"
MAC = "52:54:00:ab:cd:ef"


def ro_content():
    """The read-only disk's known bytes: a recognisable 16 MiB."""
    block = hashlib.sha256(b"popek-ro-disk").digest() * 128        # 4 KiB
    out = bytearray()
    for i in range(DISK_SIZE // 4096):
        out += i.to_bytes(4, "little") + block[4:]
    out[:32] = b"POPEK-RO-DISK-KNOWN-CONTENT-0001"
    return bytes(out)


def expected_vda():
    data = bytearray(DISK_SIZE)
    data[PATTERN_OFFSET:PATTERN_OFFSET + len(PATTERN)] = PATTERN
    return bytes(data)


def sha(data):
    return hashlib.sha256(data).hexdigest()


DISK_SCRIPT = f"""
echo "BLOCK=$(ls /sys/block | tr '\\n' ' ')"
yes popek-virtio-blk-pattern | head -c 8192 >/tmp/pat
dd if=/tmp/pat of=/dev/vda bs=512 seek={PATTERN_SECTOR} conv=fsync 2>/dev/null
echo "VDA-WRITE-RC=$?"
sync
echo "VDA-READBACK=$(dd if=/dev/vda bs=512 skip={PATTERN_SECTOR} count=16 2>/dev/null | sha256sum | cut -d' ' -f1)"
dd if=/tmp/pat of=/dev/vdb bs=512 count=1 conv=fsync 2>/tmp/err
echo "VDB-WRITE-RC=$? $(tail -n 1 /tmp/err)"
echo "VDB-RO=$(cat /sys/block/vdb/ro) VDA-RO=$(cat /sys/block/vda/ro)"
echo "VDB-HEAD=$(head -c 32 /dev/vdb)"
echo "VDB-SHA=$(sha256sum /dev/vdb | cut -d' ' -f1)"
if [ -e /sys/block/vdb/serial ]; then echo "VDB-SERIAL=$(cat /sys/block/vdb/serial)"; else echo VDB-SERIAL-ABSENT; fi
"""

RNG_SCRIPT = """
echo "RNG-CURRENT=$(cat /sys/class/misc/hw_random/rng_current)"
echo "RNG-AVAILABLE=$(cat /sys/class/misc/hw_random/rng_available)"
echo "RNG-BYTES=$(dd if=/dev/hwrng bs=32 count=2 2>/dev/null | od -An -v -tx1 | tr -d ' \\n')"
"""

NET_SCRIPT = """
echo "NET-IFACES=$(ls /sys/class/net | tr '\\n' ' ')"
echo "NET-MAC=$(cat /sys/class/net/eth0/address)"
ip link set lo up
ip link set eth0 up
ip addr add 10.200.0.2/24 dev eth0
ping -c 3 -W 3 10.200.0.1
"""


@pytest.fixture(scope="module")
def guests():
    """Built on the host: L1 sees the host's / read-only."""
    try:
        kernel = popek_guests.cloud_kernel()
        return {"bzimage": kernel.bzimage, "initrd": popek_guests.initramfs(kernel=kernel)}
    except popek_guests.GuestError as e:
        pytest.fail("cannot build the Linux test guests: %s" % e)


@pytest.fixture(scope="module")
def images(popek):
    """The disk images, where L1 can read them (not /tmp)."""
    d = popek.parent / "test-virtio"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / "vda.img").write_bytes(bytes(DISK_SIZE))
    (d / "vdb.img").write_bytes(ro_content())
    yield d
    shutil.rmtree(d, ignore_errors=True)


def vmmrun_argv(*argv, timeout=BOOT_TIMEOUT):
    return [PY, GUESTS / "vmmrun.py", "--timeout", str(timeout), "--", *argv]


def sh(script):
    return ["sh", "-c", script]


@pytest.fixture(scope="module")
def batch(popek, guests, images):
    def popek_run(script, extra=()):
        return [popek, "run", "--kernel", guests["bzimage"], "--initrd", guests["initrd"],
                "--memory", "512M", "--cmdline", popek_guests.script_cmdline(script), *extra]

    q = lambda argv: " ".join(shlex.quote(str(a)) for a in argv)   # noqa: E731
    commands = {}
    # Disks: popek works on copies in a writable scratch directory; their
    # hashes are printed after it exits.
    disk_run = vmmrun_argv(*popek_run(DISK_SCRIPT, [
        "--disk", "$d/vda.img", "--disk", f"$d/vdb.img,ro,serial={SERIAL}"]))
    disk_cmd = q(disk_run).replace("'$d/", '"$d"\'/')
    commands["disks"] = sh(
        f'd=$(mktemp -d) && cp {q([images / "vda.img", images / "vdb.img"])} "$d"/ || exit 125\n'
        f'{disk_cmd}\nrc=$?\n'
        f'echo "HOST-VDA-REGION=$(dd if="$d"/vda.img bs=512 skip={PATTERN_SECTOR} count=16 '
        f'2>/dev/null | sha256sum | cut -d" " -f1)"\n'
        f'echo "HOST-VDA-SHA=$(sha256sum "$d"/vda.img | cut -d" " -f1)"\n'
        f'echo "HOST-VDB-SHA=$(sha256sum "$d"/vdb.img | cut -d" " -f1)"\n'
        f'rm -rf "$d"\nexit $rc')
    commands["rng"] = vmmrun_argv(*popek_run(RNG_SCRIPT))
    # The tap lives in a network namespace of its own inside L1.
    net_run = vmmrun_argv(*popek_run(NET_SCRIPT, ["--net", f"tap=pk0,mac={MAC}"]))
    commands["net"] = sh(
        "modprobe tun 2>/dev/null; ip netns add pk && "
        "ip -n pk tuntap add dev pk0 mode tap vnet_hdr && "
        "ip -n pk addr add 10.200.0.1/24 dev pk0 && "
        "ip -n pk link set pk0 up && ip -n pk link set lo up || exit 125\n"
        f"ip netns exec pk {q(net_run)}\nrc=$?\n"
        "echo \"HOST-TAP-STATS=$(ip -n pk -s link show pk0 | tr '\\n' ' ')\"\n"
        "ip netns del pk\nexit $rc")
    commands["balloon"] = [PY, GUESTS / "balloon_check.py", "--popek", popek,
                           "--kernel", guests["bzimage"], "--initrd", guests["initrd"],
                           "--memory-mib", "512", "--touch-mib", "192",
                           "--target-mib", "160", "--timeout", "240"]
    total = BOOT_TIMEOUT * 3 + 240 + 300
    results, where = faithful.run_batch(commands, timeout=total, memory_mb=8192)
    print(f"ran on the {where} path")
    return results


def expect_script_ok(result, what):
    status, out, _err = result
    assert status != 124, f"{what}: popek did not exit within the timeout\n{describe(result)}"
    rc = popek_guests.script_status(out)
    assert rc is not None, f"{what}: the guest script did not finish\n{describe(result)}"
    assert status == 0, f"{what}: popek's status after poweroff -f\n{describe(result)}"
    return rc


def test_disks_in_guest(batch):
    result = batch["disks"]
    expect_script_ok(result, "disks")
    out = result[1]
    d = describe(result)
    assert field(out, "BLOCK").split() == ["vda", "vdb"], d
    assert field(out, "VDA-WRITE-RC") == "0", d
    assert field(out, "VDA-READBACK") == sha(PATTERN), d
    assert not field(out, "VDB-WRITE-RC").startswith("0"), f"a write to the ro disk succeeded\n{d}"
    assert "VDB-RO=1 VDA-RO=0" in out, d
    assert field(out, "VDB-HEAD") == ro_content()[:32].decode(), d
    assert field(out, "VDB-SHA") == sha(ro_content()), f"the guest read other bytes from vdb\n{d}"
    print("\n".join(l for l in out.splitlines() if re.match(r"(BLOCK|VD[AB]-)", l)))


def test_disk_serial(batch):
    out = batch["disks"][1]
    if "VDB-SERIAL-ABSENT" in out:
        pytest.skip("this guest kernel has no /sys/block/vdb/serial")
    assert field(out, "VDB-SERIAL") == SERIAL, describe(batch["disks"])


def test_disk_files_after_poweroff(batch):
    result = batch["disks"]
    out = result[1]
    d = describe(result)
    assert field(out, "HOST-VDA-REGION") == sha(PATTERN), \
        f"vda's file does not hold the pattern at {PATTERN_OFFSET}\n{d}"
    assert field(out, "HOST-VDA-SHA") == sha(expected_vda()), \
        f"vda's file changed outside the pattern\n{d}"
    assert field(out, "HOST-VDB-SHA") == sha(ro_content()), f"the read-only image changed\n{d}"


def test_rng(batch):
    result = batch["rng"]
    assert expect_script_ok(result, "rng") == 0, describe(result)
    out = result[1]
    cur = field(out, "RNG-CURRENT")
    assert cur and cur.startswith("virtio_rng"), describe(result)
    data = bytes.fromhex(field(out, "RNG-BYTES") or "")
    assert len(data) == 64, describe(result)
    assert len(set(data)) > 1, describe(result)
    print(f"rng_current={cur} bytes={data.hex()}")


def test_net_ping(batch):
    result = batch["net"]
    rc = expect_script_ok(result, "net")
    out = result[1]
    d = describe(result)
    assert field(out, "NET-MAC") == MAC, d
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received, (\d+)% packet loss", out)
    assert m, f"no ping summary\n{d}"
    assert (m[2], m[3]) == ("3", "0"), d
    assert rc == 0, d
    print("\n".join(l for l in out.splitlines() if "bytes from" in l or "packet" in l
                    or "round-trip" in l))


def test_balloon_returns_memory(batch):
    status, out, err = batch["balloon"]
    # The head too: the BALLOON line and popek's stderr come before the
    # console, whose tail is what a failure usually needs.
    head = out[:4000] if len(out) > 10000 else ""
    d = f"status {status}\n{head}\n[...]\n{out[-6000:]}\n{err[-2000:]}"
    m = re.search(r"BALLOON rss-before-kib=(\d+) rss-after-kib=(\d+) target-mib=(\d+) "
                  r"actual-mib=(\S+)", out)
    assert m, d
    assert status == 0, d
    before, after = int(m[1]), int(m[2])
    print(m[0])
    print(re.search(r"BALLOON-STATS .*", out)[0])
    assert before - after >= 100 * 1024, f"RSS fell by {(before - after) >> 10} MiB only\n{d}"
