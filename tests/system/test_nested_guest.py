"""The built-in guest on a KVM that behaves like hardware (the nested
harness on hosts like this one): it boots with 1, 2 and 4 vCPUs and several
memory sizes through both entry paths, and the CPUID each vCPU sees
(vendor, topology, APIC IDs, hypervisor leaves) is what popek set."""
import re

import pytest

from guest_report import GiB, MiB, Report, check_report
import faithful

pytestmark = pytest.mark.nested

BOOTS = {
    "cpus1": (["--cpus", "1"], 1, 256 * MiB, "pvh"),
    "cpus2": (["--cpus", "2", "--memory", "128M"], 2, 128 * MiB, "pvh"),
    "cpus4": (["--cpus", "4", "--memory", "3500M"], 4, 3500 * MiB, "pvh"),
    "mem8g": (["--cpus", "2", "--memory", "8G"], 2, 8 * GiB, "pvh"),
    "multiboot": (["--cpus", "3", "--kernel", "{guest}/popek-guest-multiboot.elf"], 3,
                  256 * MiB, "multiboot"),
}
CPUID_DUMPS = (1, 2, 3, 4)


@pytest.fixture(scope="module")
def batch(popek, guest_dir):
    commands = {}
    for name, (args, *_rest) in BOOTS.items():
        commands[name] = [popek, "run", *[a.format(guest=guest_dir) for a in args]]
    for n in CPUID_DUMPS:
        commands[f"cpuid{n}"] = [popek, "cpuid", "--cpus", str(n)]
    commands["exits"] = [popek, "run", "--cmdline", "exits=2000"]
    commands["triple"] = [popek, "run", "--cmdline", "fault=triple"]
    results, where = faithful.run_batch(commands)
    print(f"ran on the {where} path")
    return results


def cpuid_table(text):
    """popek cpuid output -> {(cpu, leaf, index): (eax, ebx, ecx, edx)}"""
    t = {}
    for m in re.finditer(r"cpu (\d+) leaf 0x([0-9a-f]+)\.(\d+) eax=0x([0-9a-f]+) "
                         r"ebx=0x([0-9a-f]+) ecx=0x([0-9a-f]+) edx=0x([0-9a-f]+)", text):
        t[(int(m[1]), int(m[2], 16), int(m[3]))] = tuple(int(m[i], 16) for i in range(4, 8))
    return t


@pytest.mark.parametrize("name", list(BOOTS))
def test_boots(batch, name):
    status, out, err = batch[name]
    _args, cpus, memory, boot = BOOTS[name]
    assert status == 0, err
    check_report(out, cpus=cpus, memory=memory, boot=boot)


@pytest.mark.parametrize("name", ["cpus1", "cpus2", "multiboot", "cpus4"])
def test_cpuid_is_what_popek_set(batch, name):
    _args, cpus, _memory, _boot = BOOTS[name]
    status, out, err = batch[name]
    assert status == 0, err
    rc, dump, derr = batch[f"cpuid{cpus}"]
    assert rc == 0, derr
    table = cpuid_table(dump)
    assert table, dump
    r = Report(out)

    leaf0 = table[(0, 0, 0)]
    vendor = b"".join(v.to_bytes(4, "little") for v in (leaf0[1], leaf0[3], leaf0[2])).decode()
    assert r.field("cpu-vendor") == vendor

    hv = table[(0, 0x40000000, 0)]
    sig = b"".join(v.to_bytes(4, "little") for v in hv[1:]).rstrip(b"\0").decode()
    assert sig == "KVMKVMKVM"
    kvm_features = table[(0, 0x40000001, 0)][0]
    m = re.match(r"(\S+) max-leaf=0x([0-9a-f]+) kvm-features=0x([0-9a-f]+)", r.field("hypervisor"))
    assert m, r.field("hypervisor")
    assert m[1] == sig and int(m[2], 16) == hv[0] and int(m[3], 16) == kvm_features

    amd = vendor in ("AuthenticAMD", "HygonGenuine")
    for i in range(cpus):
        c = r.cpus[i]
        l1 = table[(i, 1, 0)]
        assert int(c["apic-id"]) == i
        assert int(c["leaf1-apic-id"]) == l1[1] >> 24 == i
        assert int(c["logical-per-package"]) == (l1[1] >> 16) & 0xff
        assert int(c["x2apic-id"]) == table[(i, 0xB, 0)][3] == i
        assert int(c["smt-width"]) == table[(i, 0xB, 0)][0] & 0x1f
        assert int(c["core-width"]) == table[(i, 0xB, 1)][0] & 0x1f
        assert int(c["cores"]) == table[(i, 0xB, 1)][1] & 0xffff == cpus
        if amd and (i, 0x8000001E, 0) in table:
            assert int(c["ext-apic-id"]) == table[(i, 0x8000001E, 0)][0] == i


def test_exits_nested(batch):
    status, out, err = batch["exits"]
    assert status == 0, err
    m = re.search(r"popek-guest: exits=2000 ns=(\d+) ns-per-exit=(\d+)", out)
    assert m, out


def test_triple_fault_nested(batch):
    status, out, err = batch["triple"]
    assert status == 6, (status, err)
    assert "triple fault (KVM_EXIT_SHUTDOWN)" in err
