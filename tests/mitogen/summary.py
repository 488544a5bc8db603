# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Markdown table of tests/mitogen/run.sh: medians over the rounds of each phase, cycle and ssh floor.

  summary.py TIMES_TSV HOSTS ROUNDS
TIMES_TSV holds "LABEL<TAB>SECONDS" lines; labels are STRATEGY-cycle-ROUND-PHASE, STRATEGY-floor-ROUND-pingN and
STRATEGY-tasks-ROUND-nN (a play of N ping tasks).
"""
from __future__ import annotations

import collections
import statistics
import sys

STRATEGIES = ("mitogen", "ssh")
PHASES = ("enable", "collect", "revert")


def read_times(path: str) -> dict[tuple[str, str, str], float]:
    """(strategy, kind, round) -> summed seconds, and (strategy, phase, round) for each cycle phase."""
    sums: dict[tuple[str, str, str], float] = collections.defaultdict(float)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            label, seconds = line.rstrip("\n").split("\t")
            strategy, kind, round_no, part = label.split("-", 3)
            sums[(strategy, kind, round_no)] += float(seconds)
            if kind in ("cycle", "tasks"):
                sums[(strategy, part, round_no)] += float(seconds)
    return sums


def median_of(sums: dict[tuple[str, str, str], float], strategy: str, row: str) -> float:
    values = [seconds for (s, kind, _round), seconds in sums.items() if s == strategy and kind == row]
    return statistics.median(values)


def table(sums: dict[tuple[str, str, str], float], hosts: int, rounds: int) -> str:
    rows = [(phase, phase) for phase in PHASES]
    rows += [("cycle", "**cycle (enable + collect + revert)**"), ("floor", "ssh floor (3 x `ansible all -m ping`)")]
    lines = [f"Median of {rounds} rounds, seconds, {hosts} hosts, forks {hosts}:", "",
             "| | `mitogen_linear` | `linear` over ssh | Mitogen / ssh |", "|---|---:|---:|---:|"]
    medians = {}
    for key, title in rows:
        mitogen, ssh = (median_of(sums, strategy, key) for strategy in STRATEGIES)
        medians[key] = (mitogen, ssh)
        lines.append(f"| {title} | {mitogen:.2f} | {ssh:.2f} | {mitogen / ssh:.2f} |")
    cycle, floor = medians["cycle"], medians["floor"]
    lines.append(f"| cycle / its own floor | {cycle[0] / floor[0]:.2f} | {cycle[1] / floor[1]:.2f} | |")
    if any(kind == "n31" for (_strategy, kind, _round) in sums):
        # One more task costs (T31 - T1) / 30; what a run costs before its first task is T1 minus one task.
        per_task = [(median_of(sums, s, "n31") - median_of(sums, s, "n1")) / 30 for s in STRATEGIES]
        start = [median_of(sums, s, "n1") - per_task[i] for i, s in enumerate(STRATEGIES)]
        lines.append(f"| one more task (play of 31 pings vs 1) | {per_task[0]:.2f} | {per_task[1]:.2f} | "
                     f"{per_task[0] / per_task[1]:.2f} |")
        lines.append(f"| a run before its first task | {start[0]:.2f} | {start[1]:.2f} | {start[0] / start[1]:.2f} |")
    return "\n".join(lines)


def main() -> int:
    path, hosts, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(table(read_times(path), hosts, rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
