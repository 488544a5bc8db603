# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Whether the automatic revert is still armed: the systemd units' states as systemctl reports them, mocked."""

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_scheduler as sched
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import Completed
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import Store

UNIT = "netfilter-conntrack-revert-init"
TIMER = {"kind": "systemd-timer", "unit": UNIT + ".timer", "in_seconds": 900}

# (case, scheduler recorded in the snapshot, units systemctl reports active, retry timers it lists, alive)
ALIVE = [
    ("timer waiting", TIMER, {UNIT + ".timer"}, [], True),
    ("timer fired, its revert running", TIMER, {UNIT + ".timer", UNIT + ".service"}, [], True),
    ("only a retry timer left", TIMER, {UNIT + "-retry1795340000.timer"}, [UNIT + "-retry1795340000.timer"], True),
    # systemctl stop, the transient unit lost (failed, not found) or its revert service killed when it fired.
    ("timer and service gone", TIMER, set(), [], False),
    ("retry timer listed but stopped", TIMER, set(), [UNIT + "-retry1795340000.timer"], False),
    ("nothing recorded", None, {UNIT + ".timer"}, [], False),
    ("armed with --no-schedule", {"kind": "none"}, {UNIT + ".timer"}, [], False),
]


@pytest.mark.parametrize("scheduler, active, retries, expected", [c[1:] for c in ALIVE], ids=[c[0] for c in ALIVE])
def test_alive_systemd_timer(tmp_path, monkeypatch, scheduler, active, retries, expected):
    def run(argv):
        if argv[1] == "list-units":
            listing = "".join(f"{unit} loaded active waiting\n" for unit in retries)
            return Completed(0, listing, "")
        assert argv[1:3] == ["is-active", "--quiet"], argv
        return Completed(0 if argv[3] in active else 3, "", "")

    monkeypatch.setattr(sched, "run_argv", run)
    monkeypatch.setattr(sched.shutil, "which", lambda name: "/usr/bin/" + name)
    scheduler_ = sched.Scheduler(Store(str(tmp_path)), "/p.pyz", use_systemd=lambda: True)
    assert scheduler_.alive(scheduler, "init") is expected


def test_alive_systemd_timer_without_systemctl(tmp_path, monkeypatch):
    monkeypatch.setattr(sched.shutil, "which", lambda name: None)
    assert sched.Scheduler(Store(str(tmp_path)), "/p.pyz").alive(TIMER, "init") is False
