# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Only kernel-facility records count: a program that writes to /dev/kmsg cannot forge kernel evidence."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _kernel_log as kl
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import run_argv
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import (
    Summary,
    journal_entry_from_kernel,
    kmsg_facility,
    summarise_lines,
)

MESSAGE = ("nf_ct_proto_6: invalid tcp flag combination IN=lo OUT= SRC=10.99.0.1 DST=10.99.0.2 LEN=40 PROTO=TCP"
           " SPT=1 DPT=80 SYN FIN")
TABLE_FULL = "nf_conntrack: table full, dropping packet"

# (case id, /dev/kmsg priority, counted): the priority is facility << 3 | level; only facility 0 is the kernel.
KMSG_CASES = [
    ("kern.warning", 4, True),
    ("kern.debug", 7, True),
    ("user.warning (echo '<12>...' > /dev/kmsg)", 12, False),
    ("user.notice (echo '...' > /dev/kmsg, no prefix)", 13, False),
    ("daemon.info", 30, False),
    ("local7.emerg", 184, False),
]


@pytest.mark.parametrize("prio, counted", [c[1:] for c in KMSG_CASES], ids=[c[0] for c in KMSG_CASES])
def test_kmsg_records_count_only_from_the_kernel_facility(prio: int, counted: bool) -> None:
    line = f"{prio},100,252158463,-;{MESSAGE}"
    assert kmsg_facility(line) == prio >> 3
    facts = summarise_lines([line])
    assert facts["total"] == (1 if counted else 0)
    assert facts["forged_records"] == (0 if counted else 1)
    assert facts["lines_read"] == 1


def test_a_forged_table_full_line_is_not_an_event() -> None:
    facts = summarise_lines([f"12,5,1000,-;{TABLE_FULL}", f"4,6,2000,-;{TABLE_FULL}"])
    assert facts["kernel_events"]["table_full"]["count"] == 1
    assert facts["forged_records"] == 1


def test_a_forged_line_that_imitates_nothing_is_not_counted_as_forged() -> None:
    facts = summarise_lines(["13,5,1000,-;hello from a program"])
    assert facts["forged_records"] == 0


def test_a_forged_record_is_no_gap_in_the_sequence() -> None:
    summary = Summary()
    summary.feed_lines([f"4,0,1000,-;{MESSAGE}", f"12,1,2000,-;{MESSAGE}", f"4,2,3000,-;{MESSAGE}"], sequences=True)
    facts = summary.finish()
    assert (facts["total"], facts["forged_records"], facts["lost_records"]) == (2, 1, 0)


@pytest.mark.parametrize("line", ["[  252.158463] " + MESSAGE, "Nov 27 03:47:58 host kernel: " + MESSAGE])
def test_plain_text_cannot_tell_the_facility(line: str) -> None:
    assert kmsg_facility(line) is None
    assert summarise_lines([line])["total"] == 1


# (case id, journal fields besides MESSAGE, counted)
JOURNAL_CASES = [
    ("kernel record", {"_TRANSPORT": "kernel", "SYSLOG_FACILITY": "0"}, True),
    ("program's line read from /dev/kmsg by journald", {"_TRANSPORT": "kernel", "SYSLOG_FACILITY": "1"}, False),
    ("syslog() with the kern facility", {"_TRANSPORT": "syslog", "SYSLOG_FACILITY": "0"}, False),
    ("stdout of a service", {"_TRANSPORT": "stdout"}, False),
    ("kernel transport, no facility field (older export)", {"_TRANSPORT": "kernel"}, True),
    ("neither field (a hand-made file)", {}, True),
]


@pytest.mark.parametrize("fields, counted", [c[1:] for c in JOURNAL_CASES], ids=[c[0] for c in JOURNAL_CASES])
def test_journal_entries_count_only_from_the_kernel(fields: dict[str, str], counted: bool) -> None:
    entry = dict(fields, MESSAGE=MESSAGE, _SOURCE_MONOTONIC_TIMESTAMP="1000")
    assert journal_entry_from_kernel(entry) is counted
    from_lines = summarise_lines([json.dumps(entry)])
    from_entries = Summary().feed_journal_entries([entry]).finish()
    for facts in (from_lines, from_entries):
        assert facts["total"] == (1 if counted else 0)
        assert facts["forged_records"] == (0 if counted else 1)


class DmesgHost:
    """which() finds a dmesg stand-in; run() runs it (C locale); warn() records."""

    def __init__(self, dmesg: str) -> None:
        self.dmesg = dmesg
        self.warnings: list[str] = []

    def which(self, name: str, opt_dirs: list[str]) -> str | None:
        return self.dmesg if name == "dmesg" else None

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        return run_argv(argv)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def fake_dmesg(tmp_path: t.Any, knows_facility: bool) -> str:
    """util-linux's dmesg filters with --facility=kern; busybox's refuses the option."""
    (tmp_path / "kern.txt").write_text(f"[  1.000000] {MESSAGE}\n")
    (tmp_path / "all.txt").write_text(f"[  1.000000] {MESSAGE}\n[  2.000000] {MESSAGE}\n")
    refuse = ":" if knows_facility else "exit 1"
    script = tmp_path / "dmesg"
    script.write_text(f'#!/bin/sh\ncase "$*" in *--facility=kern*) {refuse}; cat {tmp_path}/kern.txt; exit 0;; esac\n'
                      f"cat {tmp_path}/all.txt\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("knows_facility, total, warned", [(True, 1, False), (False, 2, True)])
def test_dmesg_asks_for_the_kernel_facility(tmp_path: t.Any, knows_facility: bool, total: int, warned: bool) -> None:
    host = DmesgHost(fake_dmesg(tmp_path, knows_facility))
    facts = kl.read_invalid_log(host, source="dmesg")
    assert facts["total"] == total
    assert any("--facility" in warning for warning in host.warnings) is warned


def test_forged_records_are_a_warning(tmp_path: t.Any) -> None:
    log = tmp_path / "kmsg.txt"
    log.write_text(f"4,1,1000,-;{MESSAGE}\n12,2,2000,-;{MESSAGE}\n")
    host = DmesgHost("/nonexistent")
    facts = kl.read_invalid_log(host, source="file", log_path=str(log))
    assert (facts["total"], facts["forged_records"]) == (1, 1)
    assert any("written by a program" in warning for warning in host.warnings)
