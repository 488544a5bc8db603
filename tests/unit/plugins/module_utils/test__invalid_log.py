# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import random
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import (
    JOURNAL_MISSED_MESSAGE_ID,
    MAX_REASONS,
    OTHER,
    Since,
    Summary,
    iter_text_lines,
    journal_missed,
    kmsg_sequence,
    normalise_reason,
    parse_message,
    parse_packet_dump,
    parse_since,
    split_any,
    split_line,
    summarise_lines,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "invalid_log")


def fixture_lines(name: str) -> list[str]:
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return [line for line in handle.read().splitlines() if not line.startswith("#")]


def fixture_line(name: str, needle: str) -> str:
    return next(line for line in fixture_lines(name) if needle in line)


DMESG = "dmesg-6.18.44-fc-v657.txt"
KMSG = "kmsg-6.18.44-fc-v782.txt"
JOURNAL = "journal-wrapped-6.18.txt"
ARTICLE = "article-5.x-trimmed.txt"

# (fixture, text identifying the line, expected subset of the parsed record)
TEST_PARSE: list[tuple[str, str, dict[str, t.Any]]] = [
    (DMESG, "SPT=40001 ", {
        "protocol": "tcp", "reason": "invalid tcp flag combination", "state": None, "in": "vs", "out": None,
        "src": "10.99.0.1", "dst": "10.99.0.2", "sport": 40001, "dport": 80, "flags": ["RST", "SYN"], "family": "ipv4",
    }),
    (DMESG, "SPT=40011 ", {"reason": "invalid tcp flag combination", "flags": ["SYN", "FIN"]}),
    (DMESG, "truncated packet", {"reason": "truncated packet", "flags": ["SYN"], "sport": 40003}),
    (DMESG, "nf_ct_proto_1:", {
        "protocol": "icmp", "reason": "invalid icmp type", "icmp_type": 200, "icmp_code": 0, "sport": None, "dport": None,
    }),
    (DMESG, "nf_ct_proto_17:", {
        "protocol": "udp", "reason": "truncated/malformed packet", "sport": 40004, "dport": 53, "length": 38,
    }),
    (DMESG, "invalid new", {"reason": "invalid new", "flags": ["ACK", "SYN"]}),
    (DMESG, "ACK is over", {
        "reason": "ACK is over upper bound N (ACKed data not seen yet)",
        "reason_text": "ACK is over upper bound 147360949 (ACKed data not seen yet)", "flags": ["ACK"],
    }),
    (DMESG, "SEQ=50001101 ACK=147360948", {"reason": "SEQ is over upper bound N (over the window of the receiver)"}),
    (DMESG, "SEQ is under", {"reason": "SEQ is under lower bound N (already ACKed data retransmitted)"}),
    (DMESG, "ignored ACK", {"reason": "ignored ACK under lower bound N (possible overly delayed)"}),
    (DMESG, "(index 0)", {"reason": "packet (index 0) in dir 0 ignored, state ESTABLISHED", "state": "ESTABLISHED"}),
    (DMESG, "(index 1)", {"reason": "packet (index 1) in dir 0 invalid, state ESTABLISHED", "state": "ESTABLISHED"}),
    (KMSG, "SPT=40002 ", {"in": "ilvB", "sport": 40002, "dport": 8080, "flags": ["SYN", "FIN"]}),
    (KMSG, "PROTO=UDP", {"protocol": "udp", "reason": "truncated/malformed packet", "dport": 8080}),
    (KMSG, "fd00:0199", {
        "protocol": "tcp", "family": "ipv6", "src": "fd00:199::1", "dst": "fd00:199::2", "sport": 40006,
        "flags": ["SYN", "FIN"], "reason": "invalid tcp flag combination",
    }),
    (ARTICLE, "invalid packet ignored", {
        "protocol": "tcp", "reason": "invalid packet ignored in state ESTABLISHED", "state": "ESTABLISHED",
        "in": None, "src": "10.47.217.34", "sport": 443, "dport": 47832, "flags": ["ACK", "SYN"],
    }),
    (ARTICLE, "upper bound (ACKed", {"reason": "ACK is over the upper bound (ACKed data not seen yet)", "dport": 49135}),
]


@pytest.mark.parametrize("name, needle, expected", TEST_PARSE, ids=[f"{c[0]}:{c[1]}" for c in TEST_PARSE])
def test_parse_real_lines(name: str, needle: str, expected: dict[str, t.Any]) -> None:
    message, dummy, dummy2 = split_line(fixture_line(name, needle))
    record = parse_message(message)
    assert record is not None and record.pop("ok") is True
    assert {key: record.get(key) for key in expected} == expected


# Constructed lines: formats no captured sample covers (older prefixes, ICMPv6, the inner packet of ICMP errors).
TEST_PARSE_CONSTRUCTED: list[tuple[str, dict[str, t.Any] | None]] = [
    # Pre-4.14 per-protocol prefix.
    ("nf_ct_tcp: invalid TCP flag combination IN= OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=40 TOS=0x00 PREC=0x00 TTL=64"
     " ID=1 PROTO=TCP SPT=1 DPT=2 WINDOW=0 RES=0x00 SYN FIN URGP=0",
     {"ok": True, "prefix": "nf_ct_tcp", "protocol": "tcp", "reason": "invalid TCP flag combination", "in": None}),
    ("nf_ct_icmpv6: invalid new with type 200 IN=eth0 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:86:dd"
     " SRC=2001:0db8:0000:0000:0000:0000:0000:0001 DST=2001:db8::2 LEN=48 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6"
     " TYPE=200 CODE=0",
     {"ok": True, "protocol": "icmpv6", "family": "ipv6", "src": "2001:db8::1", "dst": "2001:db8::2", "icmp_type": 200}),
    # The dump of an ICMP error quotes the offending packet in brackets: it must not replace the outer fields.
    ("nf_ct_proto_1: invalid icmp type IN=eth0 OUT= SRC=198.51.100.1 DST=198.51.100.2 LEN=56 PROTO=ICMP TYPE=3 CODE=3"
     " [SRC=198.51.100.2 DST=203.0.113.9 LEN=28 PROTO=UDP SPT=5 DPT=6 LEN=8 ] ",
     {"ok": True, "src": "198.51.100.1", "dst": "198.51.100.2", "sport": None, "icmp_type": 3, "icmp_code": 3}),
    # Unknown fields are ignored.
    ("nf_ct_proto_17: bad checksum IN=eth0 OUT= PHYSIN=br0 SRC=192.0.2.1 DST=192.0.2.2 LEN=30 NEWFIELD=x PROTO=UDP"
     " SPT=1 DPT=2 LEN=10 MARK=0x1 UID=0",
     {"ok": True, "protocol": "udp", "reason": "bad checksum", "sport": 1, "dport": 2, "length": 30}),
    # A dynamic-debug message (5.10 site) has no packet dump: counted as unparsed.
    ("nf_ct_tcp: Invalid dir=1 index=2 ostate=3", {"ok": False}),
    ("nf_ct_proto_6: IN=eth0 OUT= SRC=192.0.2.1", {"ok": False}),
    ("nf_ct_proto_6: something SRC=not-an-address", {"ok": True, "src": "not-an-address", "family": "ipv4"}),
    # Not conntrack at all.
    ("nf_conntrack: nf_conntrack: table full, dropping packet", None),
    ("IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2", None),
    ("", None),
]


@pytest.mark.parametrize("message, expected", TEST_PARSE_CONSTRUCTED, ids=[str(i) for i in range(len(TEST_PARSE_CONSTRUCTED))])
def test_parse_constructed(message: str, expected: dict[str, t.Any] | None) -> None:
    record = parse_message(message)
    if expected is None:
        assert record is None
    else:
        assert record is not None
        assert {key: record.get(key) for key in expected} == expected


TEST_SPLIT: list[tuple[str, tuple[str, float | None, float | None]]] = [
    ("[  304.507921] nf_ct_proto_6: x", ("nf_ct_proto_6: x", 304.507921, None)),
    ("5,345,533647864,-;nf_ct_proto_6: x", ("nf_ct_proto_6: x", 533.647864, None)),
    ("4,12,5,c,caller=T1;msg", ("msg", 0.000005, None)),
    ("2026-11-27T05:31:21+0000 host1 kernel: nf_ct_proto_6: x", ("nf_ct_proto_6: x", None, 1795757481.0)),
    ("2026-11-27T05:31:21.5+01:00 host1 kernel: m", ("m", None, 1795753881.5)),
    ("Nov 27 05:31:21 host1 kernel: m", ("m", None, None)),
    ("[  533.648334] host1 kernel: m", ("m", 533.648334, None)),
    ("2026-11-27T05:31:22.000000+00:00 host1 kernel: [  309.627912] m", ("m", 309.627912, 1795757482.0)),
    ('{"MESSAGE": "m", "_SOURCE_MONOTONIC_TIMESTAMP": "308112624", "__REALTIME_TIMESTAMP": "1795757481648334"}',
     ("m", 308.112624, 1795757481.648334)),
    ('{"MESSAGE": [110, 102, 255], "_TRANSPORT": "kernel", "__MONOTONIC_TIMESTAMP": "1000000"}', ("nf\ufffd", 1.0, None)),
    ('{"MESSAGE": null}', ("", None, None)),
    ("{not json", ("{not json", None, None)),
    ("plain text", ("plain text", None, None)),
]


@pytest.mark.parametrize("line, expected", TEST_SPLIT, ids=[c[0][:40] for c in TEST_SPLIT])
def test_split(line: str, expected: tuple[str, float | None, float | None]) -> None:
    message, monotonic, realtime = split_any(line)
    assert message == expected[0]
    assert monotonic == pytest.approx(expected[1]) if expected[1] is not None else monotonic is None
    assert realtime == pytest.approx(expected[2]) if expected[2] is not None else realtime is None


TEST_NORMALISE = [
    ("ACK is over upper bound 147360949 (ACKed data not seen yet)", "ACK is over upper bound N (ACKed data not seen yet)"),
    ("SEQ is over upper bound 65242 (over the window of the receiver)", "SEQ is over upper bound N (over the window of the receiver)"),
    ("SEQ is under lower bound 4294904156 (already ACKed data retransmitted)", "SEQ is under lower bound N (already ACKed data retransmitted)"),
    ("SEQ is over upper bound 12 (over the window of the receiver)", "SEQ is over upper bound N (over the window of the receiver)"),
    ("packet (index 1) in dir 0 invalid, state ESTABLISHED", "packet (index 1) in dir 0 invalid, state ESTABLISHED"),
    ("invalid  tcp flag combination", "invalid tcp flag combination"),
]


@pytest.mark.parametrize("text, expected", TEST_NORMALISE)
def test_normalise_reason(text: str, expected: str) -> None:
    assert normalise_reason(text) == expected


TEST_SINCE: list[tuple[t.Any, float | None]] = [
    ("boot", None),
    (None, None),
    ("", None),
    ("now", 1000.0),
    ("1795751278", 1795751278.0),
    ("@1795751278.5", 1795751278.5),
    ("2026-11-27T03:47:58Z", 1795751278.0),
    ("2026-11-27T03:47:58", 1795751278.0),
    ("2026-11-27 04:47:58+01:00", 1795751278.0),
    ("2026-11-27T03:47:58.250+0000", 1795751278.25),
]


@pytest.mark.parametrize("value, expected", TEST_SINCE)
def test_parse_since(value: t.Any, expected: float | None) -> None:
    assert parse_since(value, now=1000.0) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00", "12:00"])
def test_parse_since_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="since="):
        parse_since(value)


def test_summary_of_the_6_18_sample() -> None:
    summary = summarise_lines(fixture_lines(DMESG), max_samples=3)
    assert summary["total"] == 14
    assert summary["by_protocol"] == {"tcp": 11, "icmp": 2, "udp": 1}
    assert summary["by_reason"]["invalid tcp flag combination"] == 2
    assert summary["by_reason"]["SEQ is over upper bound N (over the window of the receiver)"] == 2
    assert summary["by_peer"] == {"10.99.0.1": 14}
    assert [s["sport"] for s in summary["samples"]] == [40001, 40011, 40003]
    assert summary["unparsed"] == {"count": 0, "samples": []}
    assert summary["first_monotonic"] == 304.507921
    assert summary["watermark_monotonic"] == summary["last_monotonic"] == 314.934047
    json.dumps(summary)  # must be JSON-serialisable as is


def test_summary_of_mixed_wrappers() -> None:
    summary = summarise_lines(fixture_lines(JOURNAL) + fixture_lines(KMSG))
    assert summary["total"] == 11
    assert summary["by_family"] == {"ipv4": 9, "ipv6": 2}
    assert summary["unparsed"]["count"] == 0
    journal = summary["samples"][4]
    assert journal["monotonic"] == 308.112624
    assert journal["timestamp"] == "2026-11-27T05:31:21.648334Z"


TEST_WINDOW: list[tuple[Since, float | None, int]] = [
    (Since(), None, 14),
    (Since(monotonic=308.5), None, 6),
    (Since(monotonic=314.934047), None, 0),  # strictly after the watermark
    (Since(monotonic=0), None, 14),
    # Wall-clock windows on lines with only kernel timestamps need the boot time to convert.
    (Since(realtime=1000.0 + 308.5), 1000.0, 6),
    (Since(realtime=1000.0 + 308.5), None, 14),
]


@pytest.mark.parametrize("since, boot_epoch, total", TEST_WINDOW)
def test_window(since: Since, boot_epoch: float | None, total: int) -> None:
    summary = summarise_lines(fixture_lines(DMESG), since=since, boot_epoch=boot_epoch)
    assert summary["total"] == total
    assert summary["watermark_monotonic"] == 314.934047


def test_window_on_journal_realtime() -> None:
    lines = fixture_lines(JOURNAL)
    # Lines whose timestamp cannot be compared (no boot time to convert with) are kept, not lost.
    assert summarise_lines(lines, since=Since(realtime=1795757481.648334))["total"] == 4
    assert summarise_lines(lines, since=Since(monotonic=309.0))["total"] == 5
    # With the boot time, every line with a timestamp can be compared (the "Nov 27" one has none usable).
    assert summarise_lines(lines, since=Since(monotonic=309.0, realtime=1795757481.648334 - 308.112624 + 309.0),
                           boot_epoch=1795757481.648334 - 308.112624)["total"] == 3


def test_reason_and_dump_on_two_lines() -> None:
    lines = [
        "[ 10.000000] nf_ct_tcp: invalid packet ignored in state ESTABLISHED",
        "[ 10.000001] IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=1 DPT=2 ACK",
        "[ 10.000002] nf_ct_tcp: Invalid dir=1 index=2 ostate=3",
        "[ 10.000003] eth0: link up",
        "[ 10.000004] nf_ct_proto_6: dangling",
    ]
    summary = summarise_lines(lines)
    assert summary["total"] == 1
    assert summary["samples"][0]["reason"] == "invalid packet ignored in state ESTABLISHED"
    assert summary["samples"][0]["src"] == "192.0.2.1"
    assert summary["unparsed"]["count"] == 2
    assert summary["unparsed"]["samples"][0].endswith("Invalid dir=1 index=2 ostate=3")


def test_garbage_never_raises() -> None:
    rng = random.Random(5)
    alphabet = "nf_ct_proto_6: =[]{}\"IN=SRC=PROTO=TCP 0123456789abcdef.:;,\t\\"
    lines = ["".join(rng.choice(alphabet) for dummy in range(rng.randint(0, 120))) for dummy2 in range(3000)]
    lines += ["nf_ct_" + line for line in lines[:1000]]
    summary = summarise_lines(lines)
    json.dumps(summary)
    assert len(summary["unparsed"]["samples"]) <= 3
    assert all(len(raw) <= 300 for raw in summary["unparsed"]["samples"])


def synthetic_lines(count: int) -> list[str]:
    """``count`` real-format lines with varied peers, ports and bounds (templates from the 6.18 samples)."""
    templates = fixture_lines(DMESG) + fixture_lines(KMSG)
    lines = []
    for index in range(count):
        line = templates[index % len(templates)]
        line = line.replace("SRC=10.99.0.1 ", f"SRC=10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256} ")
        line = line.replace("147360949", str(100000 + index)).replace("SPT=40002 ", f"SPT={1024 + index % 60000} ")
        lines.append(line)
    return lines


@pytest.mark.parametrize("count", [0, 1000, 100000])
def test_payload_is_bounded(count: int) -> None:
    summary = summarise_lines(synthetic_lines(count), max_samples=10, top_peers=10)
    assert summary["total"] == count
    assert len(summary["samples"]) == min(count, 10)
    assert len(summary["by_peer"]) <= 10
    assert len(summary["by_reason"]) <= 12
    assert len(json.dumps(summary)) < 8000


def test_payload_does_not_grow_with_lines() -> None:
    small = len(json.dumps(summarise_lines(synthetic_lines(1000))))
    large = len(json.dumps(summarise_lines(synthetic_lines(100000))))
    # Only digit counts (totals, addresses) may differ.
    assert large - small < 200


def test_reason_count_is_bounded() -> None:
    lines = [f"nf_ct_proto_6: reason number {i:x}q IN= OUT= SRC=192.0.2.1 DST=192.0.2.2 PROTO=TCP" for i in range(500)]
    summary = summarise_lines(lines)
    assert len(summary["by_reason"]) == MAX_REASONS + 1
    assert summary["by_reason"][OTHER] == 500 - MAX_REASONS


def test_zero_samples_and_peers() -> None:
    summary = summarise_lines(fixture_lines(DMESG), max_samples=0, top_peers=0)
    assert summary["samples"] == [] and summary["by_peer"] == {} and summary["peers_distinct"] == 1


def test_packet_dump_ipv6_compressed_input() -> None:
    record = parse_packet_dump("IN=eth0 OUT= SRC=2001:db8::1 DST=2001:db8::2 LEN=64 PROTO=UDP SPT=53 DPT=5353 LEN=24")
    assert (record["src"], record["family"], record["sport"], record["length"]) == ("2001:db8::1", "ipv6", 53, 64)


def test_journal_entries_feed() -> None:
    entries = [{"MESSAGE": fixture_line(DMESG, "SPT=40001 ").split("] ", 1)[1], "_SOURCE_MONOTONIC_TIMESTAMP": "304507921"}, "junk", None]
    summary = Summary().feed_journal_entries(entries).finish()
    assert summary["total"] == 1 and summary["samples"][0]["monotonic"] == 304.507921


# --- lost records: /dev/kmsg sequence numbers and journald's "Missed N kernel messages" ----------------------------

INVALID = "nf_ct_proto_6: invalid tcp flag combination IN=vs OUT= SRC=10.99.0.1 DST=10.99.0.2 LEN=40 PROTO=TCP SPT=1 DPT=80 SYN RST"


def kmsg(seq: int, usec: int, message: str = INVALID) -> str:
    return f"4,{seq},{usec},-;{message}"


# (id, /dev/kmsg records as (seq, usec), window, overruns, lost_records, upper bound ("up to" in the diagnosis))
TEST_KMSG_LOSS: list[tuple[str, list[tuple[int, int]], Since, int, int, bool]] = [
    ("nothing lost since boot", [(0, 1000), (1, 2000), (2, 3000)], Since(), 0, 0, False),
    ("wrapped: the oldest record held is number 5", [(5, 10_000_000), (6, 11_000_000)], Since(), 0, 5, False),
    ("gap between records read", [(0, 1000), (1, 2000), (7, 9_000_000), (8, 9_500_000)], Since(), 0, 5, False),
    ("wrapped, window after the oldest record held: nothing of the window lost",
     [(19795, 5_000_000), (19796, 6_000_000)], Since(monotonic=5.5), 0, 0, False),
    ("wrapped into a later window: an upper bound", [(19795, 50_000_000), (19796, 51_000_000)], Since(monotonic=40.0), 0, 19795, True),
    ("gap inside the window, exact", [(10, 50_000_000), (11, 51_000_000), (20, 52_000_000)], Since(monotonic=45.0), 0, 10 + 8, True),
    ("gap before the window: not counted", [(0, 1_000_000), (4, 2_000_000), (5, 60_000_000)], Since(monotonic=45.0), 0, 0, False),
    ("gap straddling the window start: an upper bound", [(0, 1_000_000), (9, 60_000_000)], Since(monotonic=45.0), 0, 8, True),
    ("EPIPE while reading, gap shows the count", [(0, 1000), (1, 2000), (400, 9_000_000)], Since(), 1, 398, False),
    ("sequence restarts (a second boot in the stream)", [(0, 1000), (1, 2000), (0, 500), (1, 900)], Since(), 0, 0, False),
]


@pytest.mark.parametrize(
    "records, since, overruns, lost, upper", [c[1:] for c in TEST_KMSG_LOSS], ids=[c[0] for c in TEST_KMSG_LOSS]
)
def test_kmsg_loss(records: list[tuple[int, int]], since: Since, overruns: int, lost: int, upper: bool) -> None:
    summary = Summary(since)
    for index, (seq, usec) in enumerate(records):
        if index == len(records) - 1:
            for dummy in range(overruns):
                summary.note_overrun()
        summary.feed_lines([kmsg(seq, usec), " SUBSYSTEM=net"], sequences=True)
    facts = summary.finish()
    assert facts["lost_records"] == lost
    assert facts["ring_buffer_wrapped"] is bool(lost or overruns)
    if lost or overruns:
        assert facts["diagnosis"].startswith("The kernel ring buffer wrapped")
        assert ("up to" in facts["diagnosis"]) is upper
        assert f"{facts['total']} invalid-packet records counted here are fewer" in facts["diagnosis"]
    else:
        assert facts["diagnosis"] is None


def test_loss_unknown_without_sequences() -> None:
    # dmesg output and saved files (maybe excerpts) cannot tell: null, not 0.
    facts = summarise_lines(fixture_lines(KMSG))
    assert facts["lost_records"] is None and facts["ring_buffer_wrapped"] is None and facts["diagnosis"] is None
    assert facts["total"] > 0


TEST_KMSG_SEQUENCE = [
    ("6,1234,304507921,-;message", 1234),
    ("4,0,0,c,caller=T1;message", 0),
    ("[  304.507921] message", None),
    ("", None),
    (" SUBSYSTEM=net", None),
    ("12:00 not a record", None),
]


@pytest.mark.parametrize("line, expected", TEST_KMSG_SEQUENCE)
def test_kmsg_sequence(line: str, expected: int | None) -> None:
    assert kmsg_sequence(line) == expected


MISSED = {"MESSAGE": "Missed 19450 kernel messages", "MESSAGE_ID": JOURNAL_MISSED_MESSAGE_ID,
          "__MONOTONIC_TIMESTAMP": "50000000", "__REALTIME_TIMESTAMP": "1795757481000000"}
TEST_JOURNAL_MISSED: list[tuple[t.Any, int | None]] = [
    (MISSED, 19450),
    (dict(MISSED, MESSAGE="Missed 1 kernel message"), 1),
    (dict(MISSED, MESSAGE_ID=None), 19450),  # id not selected in the output: the text decides
    (dict(MISSED, MESSAGE_ID="a596d6fe7bfa4994828e72309e95d61e"), None),  # another journald message
    (dict(MISSED, MESSAGE="Suppressed 3 messages from foo.service"), None),
    ({"MESSAGE": [1, 2]}, None),
    ("junk", None),
]


@pytest.mark.parametrize("entry, expected", TEST_JOURNAL_MISSED)
def test_journal_missed(entry: t.Any, expected: int | None) -> None:
    assert journal_missed({k: v for k, v in entry.items() if v is not None} if isinstance(entry, dict) else entry) == expected


TEST_JOURNAL_LOSS: list[tuple[str, list[t.Any], Since, int]] = [
    ("no report", [], Since(), 0),
    ("one report since boot", [MISSED], Since(), 19450),
    ("two reports", [MISSED, dict(MISSED, MESSAGE="Missed 50 kernel messages", __MONOTONIC_TIMESTAMP="60000000")], Since(), 19500),
    ("report before the window", [MISSED], Since(monotonic=55.0), 0),
    ("report inside the window", [MISSED], Since(monotonic=45.0), 19450),
]


@pytest.mark.parametrize("entries, since, lost", [c[1:] for c in TEST_JOURNAL_LOSS], ids=[c[0] for c in TEST_JOURNAL_LOSS])
def test_journal_loss(entries: list[t.Any], since: Since, lost: int) -> None:
    facts = Summary(since).feed_missed_entries(entries).finish()
    assert facts["lost_records"] == lost
    assert facts["ring_buffer_wrapped"] is bool(lost)
    if lost:
        assert f"journald reported {lost} kernel log records" in facts["diagnosis"]


def test_iter_text_lines_decodes_lazily() -> None:
    def stream() -> t.Iterator[bytes]:
        yield b'{"MESSAGE": "a"}\n'
        yield b"\xff bad utf-8\n"
        raise AssertionError("read past what was consumed")

    lines = iter_text_lines(stream())
    assert next(lines) == '{"MESSAGE": "a"}\n'
    assert next(lines) == "\ufffd bad utf-8\n"
