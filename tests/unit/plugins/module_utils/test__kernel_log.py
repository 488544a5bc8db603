# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import run_argv
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import JOURNAL_MISSED_MESSAGE_ID, Since, Summary
from ansible_collections.netfilter.conntrack.plugins.module_utils import _kernel_log as kl

MESSAGE = "nf_ct_proto_6: invalid tcp flag combination IN=vs OUT= SRC=10.99.0.1 DST=10.99.0.2 LEN=40 PROTO=TCP SPT={} DPT=80 SYN RST"


def journal_line(index: int) -> str:
    return json.dumps({
        "MESSAGE": MESSAGE.format(1024 + index % 60000),
        "_SOURCE_MONOTONIC_TIMESTAMP": str(1_000_000 + index),
        "__REALTIME_TIMESTAMP": str(1_795_757_481_000_000 + index),
        "_TRANSPORT": "kernel",
    })


class FakeHost:
    """which() finds a fake journalctl script; run() runs argv lists as both hosts do (C locale)."""

    def __init__(self, journalctl: str | None) -> None:
        self.journalctl = journalctl
        self.warnings: list[str] = []

    def which(self, name: str, opt_dirs: list[str]) -> str | None:
        return self.journalctl if name == "journalctl" else None

    def run(self, argv: list[str]) -> tuple[int, str, str]:
        return run_argv(argv)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def fake_journalctl(tmp_path: t.Any, body: str) -> str:
    """A journalctl stand-in: a shell script that logs its argv and locale, then runs ``body``."""
    script = tmp_path / "journalctl"
    script.write_text(f'#!/bin/sh\necho "$LC_ALL $*" >> {tmp_path}/argv.log\n{body}\n')
    script.chmod(0o755)
    return str(script)


def test_journal_is_streamed_line_by_line(tmp_path: t.Any) -> None:
    data = tmp_path / "journal.json"
    data.write_text("".join(journal_line(i) + "\n" for i in range(5000)))
    host = FakeHost(fake_journalctl(tmp_path, f'case "$*" in *MESSAGE_ID*) exit 0;; esac\ncat {data}'))
    summary = Summary(Since())
    kl.read_journal(host, summary)
    facts = summary.finish()
    assert facts["total"] == facts["lines_read"] == 5000
    assert facts["lost_records"] == 0 and facts["ring_buffer_wrapped"] is False and facts["diagnosis"] is None
    calls = (tmp_path / "argv.log").read_text().splitlines()
    assert calls[0].startswith("C -k -b --no-pager -q -o json --output-fields=MESSAGE,")
    assert calls[1] == f"C -b --no-pager -q -o json MESSAGE_ID={JOURNAL_MISSED_MESSAGE_ID}"


def test_stream_lines_consumes_while_the_command_writes(tmp_path: t.Any) -> None:
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

    rc, err = kl.stream_lines([script, "-x"], consume)
    assert (rc, err, seen) == (3, "oops\n", ["first\n", "second\n"])


def test_stream_lines_stops_the_command_when_the_consumer_fails(tmp_path: t.Any) -> None:
    script = fake_journalctl(tmp_path, "while :; do echo line; done")

    def consume(lines: t.Iterator[str]) -> None:
        next(lines)
        raise RuntimeError("parser failed")

    with pytest.raises(RuntimeError):
        kl.stream_lines([script], consume)


def test_old_journalctl_without_output_fields(tmp_path: t.Any) -> None:
    body = 'case "$*" in *output-fields*) echo "journalctl: unrecognized option --output-fields" >&2; exit 1;; esac\n'
    body += f'case "$*" in *MESSAGE_ID*) exit 0;; esac\necho \'{journal_line(1)}\''
    host = FakeHost(fake_journalctl(tmp_path, body))
    summary = Summary(Since())
    kl.read_journal(host, summary)
    assert summary.finish()["total"] == 1
    assert len((tmp_path / "argv.log").read_text().splitlines()) == 3


def test_journalctl_failure_is_an_error(tmp_path: t.Any) -> None:
    host = FakeHost(fake_journalctl(tmp_path, 'echo "No journal files were found." >&2; exit 1'))
    with pytest.raises(ConntrackModuleError, match="rc=1: No journal files were found"):
        kl.read_journal(host, Summary(Since()))


def test_journal_missed_reports_make_the_loss_known(tmp_path: t.Any) -> None:
    missed = json.dumps({"MESSAGE": "Missed 19450 kernel messages", "MESSAGE_ID": JOURNAL_MISSED_MESSAGE_ID,
                         "__MONOTONIC_TIMESTAMP": "2000000", "__REALTIME_TIMESTAMP": "1795757482000000"})
    body = f'case "$*" in *MESSAGE_ID*) echo \'{missed}\'; exit 0;; esac\necho \'{journal_line(1)}\''
    summary = Summary(Since())
    kl.read_journal(FakeHost(fake_journalctl(tmp_path, body)), summary)
    facts = summary.finish()
    assert facts["lost_records"] == 19450 and facts["ring_buffer_wrapped"] is True
    assert "Missed N kernel messages" in facts["diagnosis"]


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "invalid_log")


@pytest.mark.parametrize("options, error", [
    ({"max_samples": -1}, "max_samples and top_peers must be 0 or more"),
    ({"top_peers": -1}, "max_samples and top_peers must be 0 or more"),
    ({"source": "syslog"}, "source must be one of auto, journal, kmsg, dmesg, file, not 'syslog'"),
    ({"since": "boot", "since_monotonic": 1.5}, "since and since_monotonic are mutually exclusive"),
    ({"since": "yesterday-ish"}, "since"),
    ({"source": "file"}, "source=file needs log_path"),
    ({"source": "file", "log_path": "/nonexistent/kern.log"}, "cannot read /nonexistent/kern.log: No such file"),
    ({"source": "file", "log_path": __file__, "interfaces": {"init": ["eth0"]}},
     "interfaces\\['init'\\] must be a list of dictionaries with a name"),
])
def test_read_invalid_log_refuses(options: dict[str, t.Any], error: str) -> None:
    with pytest.raises(ConntrackModuleError, match=error):
        kl.read_invalid_log(FakeHost(None), **options)


def test_read_invalid_log_from_a_file() -> None:
    host = FakeHost(None)
    facts = kl.read_invalid_log(host, source="file", log_path=os.path.join(FIXTURES, "dmesg-6.1.0-56-amd64.txt"),
                                max_samples=2)
    assert (facts["source"], facts["since"], facts["since_monotonic"]) == ("file", "boot", None)
    assert facts["total"] == 5 and len(facts["samples"]) == 2
    assert host.warnings == []


def test_a_wrapped_ring_buffer_is_also_a_warning(tmp_path: t.Any) -> None:
    missed = json.dumps({"MESSAGE": "Missed 7 kernel messages", "MESSAGE_ID": JOURNAL_MISSED_MESSAGE_ID,
                         "__MONOTONIC_TIMESTAMP": "2000000", "__REALTIME_TIMESTAMP": "1795757482000000"})
    body = f'case "$*" in *MESSAGE_ID*) echo \'{missed}\'; exit 0;; esac\necho \'{journal_line(1)}\''
    host = FakeHost(fake_journalctl(tmp_path, body))
    facts = kl.read_invalid_log(host, source="auto")
    assert facts["source"] == "journal" and facts["lost_records"] == 7
    assert host.warnings == [facts["diagnosis"]]


@pytest.mark.parametrize("journal, kmsg_readable, dmesg, expected", [
    ('echo \'{"MESSAGE": "x"}\'', True, True, "journal"),
    ("exit 0", True, True, "kmsg"),
    (None, False, True, "dmesg"),
    (None, False, False, None),
])
def test_auto_picks_the_first_source_that_has_this_boot(tmp_path: t.Any, monkeypatch: t.Any, journal: str | None,
                                                        kmsg_readable: bool, dmesg: bool, expected: str | None) -> None:
    host = FakeHost(fake_journalctl(tmp_path, journal) if journal else None)
    if dmesg:
        host.which = lambda name, opt_dirs: host.journalctl if name == "journalctl" else "/bin/dmesg"  # type: ignore[method-assign]
    monkeypatch.setattr(kl.os, "access", lambda path, mode: kmsg_readable and path == kl.KMSG)
    if expected is None:
        with pytest.raises(ConntrackModuleError, match="no kernel log source"):
            kl.pick_source(host)
    else:
        assert kl.pick_source(host) == expected
