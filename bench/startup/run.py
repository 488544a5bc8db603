#!/usr/bin/env python
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Start-up of the host program: `status` on an idle state directory, run the way the action runs it.

Builds the program from a collection tree (the one this script is in, or --collections), installs it with its
own --install-to into a private root-only directory, then times N runs of the action's command line (the
bootstrap, the version check, the program) and prints the median and fastest wall time and the median CPU time,
with the same for the shipped archive run in place (no bytecode kept) and, for scale, a bare `python -c pass`.
Run as root (the bootstrap refuses a program another user could have written).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(argv: list[str], runs: int) -> dict[str, float]:
    """Median wall and CPU (user + system) seconds of runs of argv: on a shared machine the CPU time scatters less."""
    wall, cpu = [], []
    for dummy in range(runs):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        wall.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            sys.exit(f"{shlex.join(argv[:3])} ... exited {done.returncode}: {done.stdout!r} {done.stderr!r}")
    return {"wall_median_s": round(statistics.median(wall), 4), "wall_min_s": round(min(wall), 4),
            "cpu_median_s": round(statistics.median(cpu), 4)}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--collections", default=os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", "..")),
                         help="the directory holding ansible_collections/ (default: the tree this script is in)")
    options.add_argument("--python", default=sys.executable, help="the interpreter that runs the program")
    options.add_argument("--runs", type=int, default=20)
    args = options.parse_args()
    sys.path.insert(0, args.collections)
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.netfilter.conntrack.plugins.plugin_utils import _window_app as app

    with tempfile.TemporaryDirectory(prefix="nfct-startup-") as scratch:
        os.chmod(scratch, 0o700)
        shipped, state = os.path.join(scratch, "shipped.pyz"), os.path.join(scratch, "state")
        installed = os.path.join(scratch, "libexec", app.PROGRAM_FILE)
        with open(shipped, "wb") as handle:
            handle.write(app.build_app())
        digest = app.app_sha256()
        command = [args.python, "-c", app.BOOTSTRAP]
        subprocess.run(command + [shipped, digest, f"--expect-sha256={digest}", f"--install-to={installed}",
                                  "--state-dir", state, "status"], check=True, capture_output=True)
        status = command + [installed, digest, f"--expect-sha256={digest}", "--state-dir", state, "status"]
        answer = json.loads(subprocess.run(status, check=True, capture_output=True).stdout)
        shipped_status = command + [shipped, digest, f"--expect-sha256={digest}", "--state-dir", state, "status"]
        figures = {"installed copy": timed(status, args.runs), "shipped archive": timed(shipped_status, args.runs),
                   "python -c pass": timed([args.python, "-c", "pass"], args.runs)}
    print(json.dumps({"python": args.python, "runs": args.runs, "answered": sorted(answer), "status": figures,
                      "load_average": [round(value, 2) for value in os.getloadavg()]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
