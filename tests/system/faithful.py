"""Runs a batch of commands on a KVM that behaves like hardware: this host's
/dev/kvm when it does (harness.host_kvm_is_faithful()), else inside the
nested harness's L1 VM. One L1 boot serves the whole batch."""
import pathlib
import re
import shlex
import subprocess

import harness

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _partial(outdir, commands, lines=25):
    """What each command of a failed batch left: its status, or that it
    did not finish, and the tails of its output."""
    report = []
    for name in commands:
        def tail(suffix):
            f = outdir / f"{name}.{suffix}" if outdir else None
            if not f or not f.exists():
                return "(none)"
            return "\n".join(f.read_text(errors="replace").splitlines()[-lines:])
        rc = outdir / f"{name}.rc" if outdir else None
        status = rc.read_text().strip() if rc and rc.exists() else "did not finish"
        report.append(f"--- {name}: {status}\n[stdout]\n{tail('out')}\n[stderr]\n{tail('err')}")
    return "\n".join(report)


def run_batch(commands, timeout=900, memory_mb=8192):
    """commands: {name: argv}. Returns {name: (status, stdout, stderr)} and
    where it ran ("direct" or "nested")."""
    if harness.host_kvm_is_faithful():
        results = {}
        for name, argv in commands.items():
            p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=300, errors="replace")
            results[name] = (p.returncode, p.stdout, p.stderr)
        return results, "direct"

    # Inside L1: one shell script runs every command and leaves its output
    # and status in the results share.
    lines = ["#!/bin/sh", 'out="$POPEK_NESTED_OUT"']
    for name, argv in commands.items():
        cmd = " ".join(shlex.quote(str(a)) for a in argv)
        lines.append(f'{cmd} </dev/null >"$out/{name}.out" 2>"$out/{name}.err"; '
                     f'echo $? >"$out/{name}.rc"')
    # Files the commands name (a build under /tmp, say) must stay visible.
    keep = {str(pathlib.Path(a).parent) for argv in commands.values() for a in argv
            if str(a).startswith("/")}
    r = harness.run("\n".join(lines), timeout=timeout, memory_mb=memory_mb, cwd=ROOT,
                    keep_paths=sorted(keep))
    if r.returncode != 0:
        raise AssertionError(f"nested batch failed with status {r.returncode}:\n"
                             f"{r.stdout}\n{r.stderr}\n{_partial(r.outdir, commands)}")
    results = {}
    for name in commands:
        rc = r.outdir / f"{name}.rc"
        if not rc.exists():
            raise AssertionError(f"nested batch: no status for {name}:\n{r.stdout}\n{r.stderr}")
        results[name] = (int(rc.read_text()), (r.outdir / f"{name}.out").read_text(errors="replace"),
                         (r.outdir / f"{name}.err").read_text(errors="replace"))
    r.cleanup()
    return results, "nested"


def describe(result, lines=40):
    """A failed command of a batch, for an assertion message: its status,
    the end of its stderr and the last lines of the console."""
    status, out, err = result
    tail = "\n".join(out.splitlines()[-lines:])
    return (f"status {status}\n--- stderr\n{err.strip()[-3000:]}\n"
            f"--- console (last {lines} lines)\n{tail}")


def field(out, name):
    """The value of the last NAME=value line of the console, or None."""
    found = re.findall(r"^%s=(.*?)\r?$" % re.escape(name), out, re.M)
    return found[-1].strip() if found else None
