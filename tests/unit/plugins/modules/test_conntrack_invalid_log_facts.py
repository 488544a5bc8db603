# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import subprocess
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import JOURNAL_MISSED_MESSAGE_ID, Since, Summary
from ansible_collections.netfilter.conntrack.plugins.modules import conntrack_invalid_log_facts as mod

MESSAGE = "nf_ct_proto_6: invalid tcp flag combination IN=vs OUT= SRC=10.99.0.1 DST=10.99.0.2 LEN=40 PROTO=TCP SPT={} DPT=80 SYN RST"


def journal_line(index: int) -> str:
    return json.dumps({
        "MESSAGE": MESSAGE.format(1024 + index % 60000),
        "_SOURCE_MONOTONIC_TIMESTAMP": str(1_000_000 + index),
        "__REALTIME_TIMESTAMP": str(1_795_757_481_000_000 + index),
        "_TRANSPORT": "kernel",
    })


class FakeJournalModule:
    """get_bin_path() finds a fake journalctl script; run_command() runs argv lists like AnsibleModule's."""

    run_command_environ_update = {"LANGUAGE": "C", "LC_ALL": "C"}

    def __init__(self, journalctl: str | None) -> None:
        self.journalctl = journalctl
        self.commands: list[list[str]] = []

    def get_bin_path(self, name: str) -> str | None:
        return self.journalctl if name == "journalctl" else None

    def run_command(self, cmd: list[str]) -> tuple[int, str, str]:
        self.commands.append(cmd)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=dict(os.environ, **self.run_command_environ_update))
        return proc.returncode, proc.stdout, proc.stderr


def fake_journalctl(tmp_path: t.Any, body: str) -> str:
    """A journalctl stand-in: a shell script that logs its argv and locale, then runs ``body``."""
    script = tmp_path / "journalctl"
    script.write_text(f'#!/bin/sh\necho "$LC_ALL $*" >> {tmp_path}/argv.log\n{body}\n')
    script.chmod(0o755)
    return str(script)


def test_journal_is_streamed_line_by_line(tmp_path: t.Any) -> None:
    data = tmp_path / "journal.json"
    data.write_text("".join(journal_line(i) + "\n" for i in range(5000)))
    module = FakeJournalModule(fake_journalctl(tmp_path, f'case "$*" in *MESSAGE_ID*) exit 0;; esac\ncat {data}'))
    summary = Summary(Since())
    mod.read_journal(module, summary)  # type: ignore[arg-type]
    facts = summary.finish()
    assert facts["total"] == facts["lines_read"] == 5000
    assert facts["lost_records"] == 0 and facts["ring_buffer_wrapped"] is False and facts["diagnosis"] is None
    calls = (tmp_path / "argv.log").read_text().splitlines()
    assert calls[0].startswith("C -k -b --no-pager -q -o json --output-fields=MESSAGE,")
    assert calls[1] == f"C -b --no-pager -q -o json MESSAGE_ID={JOURNAL_MISSED_MESSAGE_ID}"


def test_stream_command_consumes_while_the_command_writes(tmp_path: t.Any) -> None:
    # The command only finishes once the consumer has read its first line: run_command() would deadlock here.
    fifo = tmp_path / "ack"
    os.mkfifo(fifo)
    script = fake_journalctl(tmp_path, f'echo first\nread dummy < {fifo}\necho second\necho oops >&2\nexit 3')
    seen: list[str] = []

    def consume(lines: t.Iterator[str]) -> None:
        for line in lines:
            seen.append(line)
            if line == "first\n":
                with open(fifo, "w", encoding="ascii") as ack:
                    ack.write("go\n")

    rc, err = mod.stream_command(FakeJournalModule(script), [script, "-x"], consume)  # type: ignore[arg-type]
    assert (rc, err, seen) == (3, "oops\n", ["first\n", "second\n"])


def test_stream_command_stops_the_command_when_the_consumer_fails(tmp_path: t.Any) -> None:
    script = fake_journalctl(tmp_path, "while :; do echo line; done")

    def consume(lines: t.Iterator[str]) -> None:
        next(lines)
        raise RuntimeError("parser failed")

    with pytest.raises(RuntimeError):
        mod.stream_command(FakeJournalModule(script), [script], consume)  # type: ignore[arg-type]


def test_old_journalctl_without_output_fields(tmp_path: t.Any) -> None:
    body = 'case "$*" in *output-fields*) echo "journalctl: unrecognized option --output-fields" >&2; exit 1;; esac\n'
    body += f'case "$*" in *MESSAGE_ID*) exit 0;; esac\necho \'{journal_line(1)}\''
    module = FakeJournalModule(fake_journalctl(tmp_path, body))
    summary = Summary(Since())
    mod.read_journal(module, summary)  # type: ignore[arg-type]
    assert summary.finish()["total"] == 1
    assert len((tmp_path / "argv.log").read_text().splitlines()) == 3


def test_journalctl_failure_is_an_error(tmp_path: t.Any) -> None:
    module = FakeJournalModule(fake_journalctl(tmp_path, 'echo "No journal files were found." >&2; exit 1'))
    with pytest.raises(ConntrackModuleError, match="rc=1: No journal files were found"):
        mod.read_journal(module, Summary(Since()))  # type: ignore[arg-type]


def test_journal_missed_reports_make_the_loss_known(tmp_path: t.Any) -> None:
    missed = json.dumps({"MESSAGE": "Missed 19450 kernel messages", "MESSAGE_ID": JOURNAL_MISSED_MESSAGE_ID,
                         "__MONOTONIC_TIMESTAMP": "2000000", "__REALTIME_TIMESTAMP": "1795757482000000"})
    body = f'case "$*" in *MESSAGE_ID*) echo \'{missed}\'; exit 0;; esac\necho \'{journal_line(1)}\''
    summary = Summary(Since())
    mod.read_journal(FakeJournalModule(fake_journalctl(tmp_path, body)), summary)  # type: ignore[arg-type]
    facts = summary.finish()
    assert facts["lost_records"] == 19450 and facts["ring_buffer_wrapped"] is True
    assert "Missed N kernel messages" in facts["diagnosis"]
