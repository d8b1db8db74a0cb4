"""Parses and checks the built-in guest's serial report (docs/guest.md)."""
import re

PREFIX = "popek-guest: "
GiB = 1 << 30
MiB = 1 << 20
HOLE_START = 3 * GiB
HOLE_END = 4 * GiB


class Report:
    def __init__(self, text):
        self.text = text
        self.lines = [l[len(PREFIX):].rstrip("\r") for l in text.splitlines()
                      if l.startswith(PREFIX)]
        self.fields = {}
        self.e820 = []
        self.cpus = {}
        for line in self.lines:
            m = re.match(r"e820 0x([0-9a-f]+)-0x([0-9a-f]+) (\S+)$", line)
            if m:
                self.e820.append((int(m[1], 16), int(m[2], 16), m[3]))
                continue
            m = re.match(r"cpu (\d+): (.*)$", line)
            if m:
                # key=value pairs; a bare word (e.g. "no-response") maps to True
                self.cpus[int(m[1])] = {kv.split("=", 1)[0]: (kv.split("=", 1) + [True])[1]
                                        for kv in m[2].split()}
                continue
            m = re.match(r"([a-z0-9-]+)=(.*)$", line)
            if m:
                self.fields[m[1]] = m[2]

    def has(self, line):
        return line in self.lines

    def field(self, name):
        assert name in self.fields, f"no '{name}=' line in the report:\n{self.text}"
        return self.fields[name]


def expected_e820(memory):
    """The memory map popek gives a guest of `memory` bytes."""
    low_end = min(memory, HOLE_START)
    m = [(0, 0x9FC00, "ram"), (0x9FC00, 0xA0000, "reserved"),
         (0xF0000, 0x100000, "reserved"), (0x100000, low_end, "ram")]
    if memory > HOLE_START:
        m.append((HOLE_END, HOLE_END + memory - HOLE_START, "ram"))
    return m


def check_report(out, cpus, memory, boot="pvh", cmdline=None):
    """Checks a full report line by line; returns the Report."""
    r = Report(out)
    assert r.lines, f"no guest report in the output:\n{out}"
    assert r.field("boot") == boot
    if cmdline is not None:
        assert r.field("cmdline") == f'"{cmdline}"'
    counts = r.field("cpus").split()
    assert counts[0] == str(cpus), r.field("cpus")
    assert counts[1] == f"online={cpus}", r.field("cpus")
    assert r.field("apic-ids") == ",".join(str(i) for i in range(cpus))
    assert len(r.field("cpu-vendor")) == 12
    assert re.match(r"family \d+ model \d+ stepping \d+$", r.field("cpu-signature"))
    for feature in ("fpu", "tsc", "apic", "pae", "lm"):
        assert feature in r.field("cpu-features").split(), r.field("cpu-features")
    assert r.e820 == expected_e820(memory), r.e820
    total = sum(end - start for start, end, kind in r.e820 if kind == "ram")
    assert r.field("memory-total").split()[0] == str(total)
    top = max(end for start, end, kind in r.e820 if kind == "ram")
    addr, status = r.field("memory-top").split()
    assert int(addr, 16) == top - 4096 and status == "ok", r.field("memory-top")
    assert sorted(r.cpus) == list(range(cpus))
    for i, c in r.cpus.items():
        assert c["apic-id"] == str(i), c
        assert c["workload"] == "ok", c
    assert r.has(f"workload ok on {cpus} cpus")
    assert r.lines[-1] == "done"
    return r
