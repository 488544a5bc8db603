#!/usr/bin/env python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark conntrack_invalid_log_facts' journal reader at 20k, 100k and 200k kernel journal records.

Run on any Linux host (no journald needed) with a Python that has ansible-core, GNU time and rsync:

    python bench/journal/run.py [--sizes 20000 100000 200000] [--repeat 3] [--old REV] [--write docs/benchmarks.md]

For each size it writes synthetic ``journalctl -k -o json --output-fields=...`` output (invalid-packet
lines from 256 peers, as the kernel logs them, with the fields the module asks for) and a fake
``journalctl`` that prints it, then times, each in a fresh process and ``--repeat`` times (median):

* ``cat`` of the data into a pipe that is read and discarded (the floor: producing the bytes);
* a Python process that reads the fake journalctl's pipe and ``json.loads`` each line, nothing else (the floor of
  any reader of ``journalctl -o json`` in Python);
* the reader of this checkout: ``_kernel_log.read_journal()`` (what the module and the host program run) on the
  fake journalctl;
* the reader of ``--old`` (default ``HEAD~1`` of this file's history, the version that used run_command), the
  same way, so that both are measured in the same run on the same data.

Peak RSS is GNU time's ``%M`` of each process. Nothing on the host is changed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECTION = "## conntrack_invalid_log_facts: the journal reader"
TIME = "/usr/bin/time"
MODULE = "plugins/modules/conntrack_invalid_log_facts.py"
UTILS = "plugins/module_utils/_invalid_log.py"

READER = r"""
import sys
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import ProcessHost
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import Since, Summary
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log import read_journal

class Host(ProcessHost):
    def which(self, name, opt_dirs):
        return sys.argv[1] if name == "journalctl" else None

summary = Summary(Since(), None, 10, 10)
read_journal(Host(), summary)
facts = summary.finish()
assert facts["total"] == int(sys.argv[2]), (facts["total"], sys.argv[2])
"""

# The reader before the streaming change lived in the module and took an AnsibleModule.
OLD_READER = r"""
import sys
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import Since, Summary
from ansible_collections.netfilter.conntrack.plugins.modules import conntrack_invalid_log_facts as mod

class Module:
    run_command_environ_update = {"LANGUAGE": "C", "LC_ALL": "C"}
    def get_bin_path(self, name):
        return sys.argv[1] if name == "journalctl" else None
    def run_command(self, cmd):
        from ansible.module_utils.basic import AnsibleModule  # the real run_command, on a bare instance
        fake = AnsibleModule.__new__(AnsibleModule)
        fake.run_command_environ_update = self.run_command_environ_update
        fake._debug = False
        fake.no_log = False
        fake._clean = None
        fake.no_log_values = set()
        fake.check_mode = False
        fake._name = "bench"
        fake.log = lambda *a, **k: None
        fake.debug = lambda *a, **k: None
        return fake.run_command(cmd)

summary = Summary(Since(), None, 10, 10)
mod.read_journal(Module(), summary)
facts = summary.finish()
assert facts["total"] == int(sys.argv[2]), (facts["total"], sys.argv[2])
"""

JSON_FLOOR = r"""
import json, subprocess, sys
proc = subprocess.Popen([sys.argv[1], "-k"], stdout=subprocess.PIPE)
for line in proc.stdout:
    json.loads(line)
proc.wait()
"""

MESSAGE = (
    "nf_ct_proto_6: invalid tcp flag combination IN=vethb1 OUT= MAC=02:2a:4b:34:93:22:7a:8f:29:fd:3a:e7:08:00 "
    "SRC=10.99.{a}.{b} DST=10.99.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT={sport} DPT=80 "
    "SEQ=0 ACK=0 WINDOW=8192 RES=0x00 SYN RST URGP=0"
)


def write_data(path: str, count: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for index in range(count):
            handle.write(json.dumps({
                "__CURSOR": f"s=0123456789abcdef0123456789abcdef;i={index:x};b=7aa2b5943b814b829090;m={index:x};t=0;x=0",
                "__REALTIME_TIMESTAMP": str(1_795_757_481_000_000 + index * 100),
                "__MONOTONIC_TIMESTAMP": str(300_000_000 + index * 100),
                "_BOOT_ID": "7aa2b5943b814b82909021dbee23610c",
                "_TRANSPORT": "kernel",
                "MESSAGE": MESSAGE.format(a=index // 256 % 256 % 1, b=index % 256, sport=1024 + index % 60000),
                "_SOURCE_MONOTONIC_TIMESTAMP": str(300_000_000 + index * 100),
            }) + "\n")


def tree_of(rev: str | None, workdir: str) -> str:
    """A directory with ansible_collections/netfilter/conntrack holding this checkout, or ``rev``'s two files."""
    tree = os.path.join(workdir, rev or "current")
    dest = os.path.join(tree, "ansible_collections", "netfilter", "conntrack")
    os.makedirs(os.path.dirname(dest))
    if rev is None:
        os.symlink(ROOT, dest)
        return tree
    subprocess.run(["rsync", "-a", "--exclude", ".git", "--exclude", "/tests/output", ROOT + "/", dest + "/"], check=True)
    for path in (MODULE, UTILS):
        text = subprocess.run(["git", "-C", ROOT, "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
        with open(os.path.join(dest, path), "w", encoding="utf-8") as handle:
            handle.write(text)
    return tree


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    with tempfile.NamedTemporaryFile(prefix="nfct-journal-bench-", mode="r") as rss:
        start = time.perf_counter()
        subprocess.run([TIME, "-f", "%M", "-o", rss.name] + argv, check=True, env=env, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        return elapsed, int(rss.read().split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 100000, 200000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old", default="98ffa98~1", help="git revision of the run_command reader (default: before the streaming change)")
    parser.add_argument("--write", help="append or replace the section in this Markdown file")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="nfct-journal-bench-") as work:
        current, old = tree_of(None, work), tree_of(args.old, work)
        fake = os.path.join(work, "journalctl")
        data = os.path.join(work, "journal.json")
        with open(fake, "w", encoding="ascii") as handle:
            handle.write(f'#!/bin/sh\ncase "$*" in *MESSAGE_ID*) exit 0;; esac\nexec cat {data}\n')
        os.chmod(fake, 0o755)
        for size in args.sizes:
            write_data(data, size)
            megabytes = os.path.getsize(data) / 1e6
            results: dict[str, list[tuple[float, int]]] = {"cat": [], "json": [], "current": [], "old": []}
            for dummy in range(args.repeat):
                results["cat"].append(measure(["sh", "-c", f"cat {data} | cat > /dev/null"]))
                results["json"].append(measure([sys.executable, "-c", JSON_FLOOR, fake]))
                for name, tree, reader in (("current", current, READER), ("old", old, OLD_READER)):
                    env = dict(os.environ, PYTHONPATH=tree)
                    results[name].append(measure([sys.executable, "-c", reader, fake, str(size)], env))
            row = {"size": size, "mb": megabytes}
            for name, runs in results.items():
                row[name] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
            rows.append(row)
            print(json.dumps(row), flush=True)

    lines = [
        SECTION,
        "",
        f"Measured {datetime.date.today().isoformat()} by `bench/journal/run.py --repeat {args.repeat}` on {platform.node() and 'this host'}"
        f" ({os.cpu_count()} CPUs, Linux {platform.release()}, Python {platform.python_version()}): synthetic"
        " `journalctl -k -o json --output-fields=...` output of invalid-packet records (256 peers) served by a fake"
        " `journalctl`, read by `_kernel_log.read_journal()` (the module's and the host program's reader) in a fresh process. Median wall time of"
        f" {args.repeat} runs, peak RSS of the process (GNU time `%M`). Baselines: `cat` of the same data through a"
        " pipe, and *json floor*, a Python process that reads the same pipe and `json.loads` each line; *run_command* is"
        f" the reader before the streaming change (`{args.old}`). All measured in the same run on the same data.",
        "",
        "| records | JSON | `cat` | json floor (RSS) | streaming reader (RSS) | ÷ json floor | run_command reader (RSS) | ÷ json floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cat, floor, cur, old_ = row["cat"], row["json"], row["current"], row["old"]
        lines.append(
            f"| {row['size']:,} | {row['mb']:.0f} MB | {cat[0]:.2f} s | {floor[0]:.2f} s ({floor[1] / 1024:.0f} MiB)"
            f" | {cur[0]:.2f} s ({cur[1] / 1024:.0f} MiB) | {cur[0] / floor[0]:.1f}×"
            f" | {old_[0]:.2f} s ({old_[1] / 1024:.0f} MiB) | {old_[0] / floor[0]:.1f}× |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, encoding="utf-8") as handle:
            doc = handle.read()
        start = doc.find(SECTION)
        if start >= 0:
            end = doc.find("\n## ", start + len(SECTION))
            doc = doc[:start] + text + (doc[end + 1:] if end >= 0 else "")
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        with open(args.write, "w", encoding="utf-8") as handle:
            handle.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
