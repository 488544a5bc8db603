# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import json
import os
import re
import struct
import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _ctnetlink as nl
from ansible_collections.netfilter.conntrack.plugins.module_utils._names import protocol_name

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "ctnetlink", "dump-6.18.44.json")
CT_NEW = (nl.NFNL_SUBSYS_CTNETLINK << 8) | nl.IPCTNL_MSG_CT_NEW
NESTED = 0x8000


# --- builders: netlink bytes as the kernel lays them out --------------------------------------------------------


def nla(atype: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), atype) + payload
    return raw + b"\0" * (nl.align4(len(raw)) - len(raw))


def nest(atype: int, *children: bytes) -> bytes:
    return nla(atype | NESTED, b"".join(children))


def u8(value: int) -> bytes:
    return struct.pack("B", value)


def be16(value: int) -> bytes:
    return struct.pack(">H", value)


def be32(value: int) -> bytes:
    return struct.pack(">I", value)


def tuple_v4(src: str, dst: str, proto: int, sport: int = 0, dport: int = 0) -> bytes:
    import socket

    return b"".join(
        [
            nest(nl.CTA_TUPLE_IP, nla(nl.CTA_IP_V4_SRC, socket.inet_aton(src)), nla(nl.CTA_IP_V4_DST, socket.inet_aton(dst))),
            nest(nl.CTA_TUPLE_PROTO, nla(nl.CTA_PROTO_NUM, u8(proto)), nla(nl.CTA_PROTO_SRC_PORT, be16(sport)), nla(nl.CTA_PROTO_DST_PORT, be16(dport))),
        ]
    )


def tcp_info(state: int) -> bytes:
    return nest(nl.CTA_PROTOINFO, nest(nl.CTA_PROTOINFO_TCP, nla(nl.CTA_PROTOINFO_TCP_STATE, u8(state))))


def message(attrs: bytes, family: int = 2, mtype: int = CT_NEW, flags: int = nl.NLM_F_MULTI, seq: int = 7, res_id: int = 0) -> bytes:
    body = bytes([family, 0]) + be16(res_id) + attrs
    return struct.pack("=IHHII", 16 + len(body), mtype, flags, seq, 0) + body


def done(seq: int = 7, flags: int = nl.NLM_F_MULTI) -> bytes:
    return struct.pack("=IHHII", 20, nl.NLMSG_DONE, flags, seq, 0) + struct.pack("=i", 0)


def nl_error(err: int, seq: int = 7) -> bytes:
    return struct.pack("=IHHII", 36, nl.NLMSG_ERROR, 0, seq, 0) + struct.pack("=i", -err) + b"\0" * 16


def ct_message(proto: int, state: int | None = None, family: int = 2, sport: int = 1000, **kwargs: t.Any) -> bytes:
    orig = nest(nl.CTA_TUPLE_ORIG, tuple_v4("10.0.0.1", "10.0.0.2", proto, sport, 80))
    reply = nest(nl.CTA_TUPLE_REPLY, tuple_v4("10.0.0.2", "10.0.0.1", proto, 80, sport))
    attrs = orig + reply + nla(nl.CTA_STATUS, be32(0x0E)) + nla(nl.CTA_TIMEOUT, be32(3599))
    if state is not None:
        attrs += tcp_info(state)
    attrs += nla(nl.CTA_MARK, be32(0)) + nla(nl.CTA_USE, be32(1)) + nla(nl.CTA_ID, be32(42))
    return message(attrs, family=family, **kwargs)


def load_fixture() -> dict[str, t.Any]:
    with open(FIXTURE, encoding="utf-8") as handle:
        return json.load(handle)


# --- pure functions ---------------------------------------------------------------------------------------------


def test_build_request_layout() -> None:
    raw = nl.build_request(nl.NFNL_SUBSYS_CTNETLINK, nl.IPCTNL_MSG_CT_GET_DYING, family=10, seq=5)
    assert raw == struct.pack("=IHHII", 20, 0x0106, 0x301, 5, 0) + bytes([10, 0, 0, 0])


TEST_COUNT_KEY: list[tuple[str, bytes, tuple[int, int, int]]] = [
    ("udp fast path", ct_message(17), (2, 17, -1)),
    ("tcp established", ct_message(6, state=3), (2, 6, 3)),
    ("tcp without protoinfo", ct_message(6), (2, 6, -1)),
    ("ipv6 family byte", ct_message(17, family=10), (10, 17, -1)),
    (
        "orig tuple not first: slow path",
        message(nla(nl.CTA_MARK, be32(0)) + nest(nl.CTA_TUPLE_ORIG, tuple_v4("1.1.1.1", "2.2.2.2", 132))),
        (2, 132, -1),
    ),
    (
        "proto nest without PROTO_NUM first",
        message(
            nest(
                nl.CTA_TUPLE_ORIG,
                nest(nl.CTA_TUPLE_IP, nla(1, b"\x01\x02\x03\x04")),
                nest(nl.CTA_TUPLE_PROTO, nla(nl.CTA_PROTO_SRC_PORT, be16(1)), nla(nl.CTA_PROTO_NUM, u8(6))),
            )
            + tcp_info(7)
        ),
        (2, 6, 7),
    ),
    ("no tuple at all", message(nla(nl.CTA_MARK, be32(0))), (2, -1, -1)),
    ("empty message", message(b""), (2, -1, -1)),
]


@pytest.mark.parametrize("raw, expected", [(raw, exp) for _id, raw, exp in TEST_COUNT_KEY], ids=[c[0] for c in TEST_COUNT_KEY])
def test_ct_count_key(raw: bytes, expected: tuple[int, int, int]) -> None:
    assert nl.ct_count_key(raw, 0, len(raw)) == expected


TEST_ITER_ATTRS = [
    ("two attributes", nla(1, b"ab") + nla(2, b"abcd"), [(1, 4, 6), (2, 12, 16)]),
    ("nested flag cleared", nest(3, nla(1, b"x")), [(3, 4, 12)]),
    ("truncated length stops", struct.pack("=HH", 40, 1) + b"abcd", []),
    ("length below header stops", struct.pack("=HH", 2, 1), []),
    ("empty", b"", []),
]


@pytest.mark.parametrize("raw, expected", [(r, e) for _id, r, e in TEST_ITER_ATTRS], ids=[c[0] for c in TEST_ITER_ATTRS])
def test_iter_attrs(raw: bytes, expected: list[tuple[int, int, int]]) -> None:
    assert list(nl.iter_attrs(raw, 0, len(raw))) == expected


TEST_NAMES = [
    (nl.tcp_state_name, 3, "ESTABLISHED"),
    (nl.tcp_state_name, 9, "SYN_SENT2"),
    (nl.tcp_state_name, 12, "state_12"),
    (nl.stats_attr_name, 2, "found"),
    (nl.stats_attr_name, 12, "error"),
    (nl.stats_attr_name, 15, "chaintoolong"),
    (nl.stats_attr_name, 16, "attr_16"),
]


@pytest.mark.parametrize("func, number, name", TEST_NAMES)
def test_names(func: t.Callable[[int], str], number: int, name: str) -> None:
    assert func(number) == name


def test_status_flags() -> None:
    assert nl.status_flags(0x0E) == ["SEEN_REPLY", "ASSURED", "CONFIRMED"]
    assert nl.status_flags(0x208) == ["CONFIRMED", "DYING"]
    assert nl.status_flags(1 << 20) == ["bit_20"]


@pytest.mark.parametrize(
    "key",
    [(2, 6, 3), (10, 17, -1), (2, -1, -1), (2, 255, -1), (7, 0, -1), (2, 6, 9)],
)
def test_count_key_round_trip(key: tuple[int, int, int]) -> None:
    assert nl.unpack_count_keys({nl.pack_count_key(*key): 5}) == {key: 5}


def test_summarize_counts() -> None:
    counts = {(2, 6, 3): 2, (10, 6, 3): 1, (2, 6, -1): 1, (2, 17, -1): 4, (2, -1, -1): 1}
    assert nl.summarize_counts(counts, protocol_name, lambda f: {2: "ipv4", 10: "ipv6"}[f]) == {
        "by_family": {"ipv4": 8, "ipv6": 1},
        "by_protocol": {"tcp": 4, "udp": 4, "unknown": 1},
        "by_tcp_state": {"ESTABLISHED": 3, "unknown": 1},
    }


def test_decode_stats_cpu_with_unknown_counter() -> None:
    attrs = nla(2, be32(5)) + nla(4, be32(13)) + nla(15, be32(1)) + nla(16, be32(7)) + nla(17, b"\0" * 3)
    raw = message(attrs, family=0, res_id=1)
    assert nl.decode_stats_cpu(raw, 0, len(raw)) == (1, {"found": 5, "invalid": 13, "chaintoolong": 1, "attr_16": 7})


def test_sum_stats() -> None:
    rows = [{"cpu": 0, "found": 1, "attr_16": 2}, {"cpu": 1, "found": 3, "drop": 1}]
    assert nl.sum_stats(rows) == {"found": 4, "attr_16": 2, "drop": 1}


def test_decode_ct_entry() -> None:
    raw = ct_message(6, state=3, sport=1234)
    entry = nl.decode_ct_entry(raw, 0, len(raw), protocol_name)
    assert entry == {
        "family": "ipv4",
        "protocol": "tcp",
        "original": {"src": "10.0.0.1", "dst": "10.0.0.2", "protonum": 6, "sport": 1234, "dport": 80},
        "reply": {"src": "10.0.0.2", "dst": "10.0.0.1", "protonum": 6, "sport": 80, "dport": 1234},
        "status": ["SEEN_REPLY", "ASSURED", "CONFIRMED"],
        "timeout": 3599,
        "tcp_state": "ESTABLISHED",
        "mark": 0,
        "use": 1,
        "id": 42,
    }


TEST_ITER_MESSAGES = [
    ("done", done(), [(nl.NLMSG_DONE, 20)]),
    ("ack is done", nl_error(0), [(nl.NLMSG_DONE, 36)]),
    ("other sequence skipped", ct_message(17, seq=99) + done(), [(nl.NLMSG_DONE, 20)]),
]


@pytest.mark.parametrize("raw, expected", [(r, e) for _id, r, e in TEST_ITER_MESSAGES], ids=[c[0] for c in TEST_ITER_MESSAGES])
def test_iter_messages(raw: bytes, expected: list[tuple[int, int]]) -> None:
    assert [(mtype, length) for mtype, _flags, _off, length in nl.iter_messages(raw, len(raw), seq=7)] == expected


@pytest.mark.parametrize("err", [errno.EPERM, errno.EOPNOTSUPP, errno.EINVAL])
def test_iter_messages_error(err: int) -> None:
    raw = nl_error(err)
    with pytest.raises(nl.NetlinkError) as info:
        list(nl.iter_messages(raw, len(raw), seq=7))
    assert info.value.errno == err


def test_iter_messages_truncated() -> None:
    with pytest.raises(nl.NetlinkError, match="truncated"):
        list(nl.iter_messages(done()[:-2], 18, seq=7))
    assert list(nl.iter_messages(done()[:10], 10, seq=7)) == []  # not even a header: nothing to yield


# --- the streaming loop, fed from a fake socket ------------------------------------------------------------------


class FakeSock:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def recv_into(self, buf: bytearray, size: int) -> int:
        chunk = self.chunks.pop(0)
        buf[: len(chunk)] = chunk
        return len(chunk)

    def close(self) -> None:
        pass


def fake_client(chunks: list[bytes], seq: int = 7) -> nl.CtnetlinkSocket:
    client = nl.CtnetlinkSocket.__new__(nl.CtnetlinkSocket)
    client.sock = FakeSock(chunks)  # type: ignore[assignment]
    client.seq = seq - 1
    client.buf = bytearray(1 << 16)
    return client


def test_dump_streams_over_chunks() -> None:
    chunks = [
        ct_message(6, state=3) + ct_message(6, state=7) + ct_message(17),
        ct_message(17, family=10) + ct_message(1, seq=3),  # a stray message of another request is ignored
        done(),
    ]
    client = fake_client(chunks)
    result = client.dump_conntrack(nl.IPCTNL_MSG_CT_GET_DYING, max_entries=2, decode_entry=nl.decode_ct_entry)
    assert result.listed == 4
    assert result.counts == {(2, 6, 3): 1, (2, 6, 7): 1, (2, 17, -1): 1, (10, 17, -1): 1}
    assert len(result.entries) == 2
    assert client.sock.sent[0][4:6] == struct.pack("=H", 0x0106)  # type: ignore[attr-defined]


INTR = nl.NLM_F_MULTI | nl.NLM_F_DUMP_INTR
# NLM_F_DUMP_INTR (0x10) may be set on an entry or only on the final NLMSG_DONE (nl_dump_check_consistent);
# a message of another request carrying it must not count.
TEST_DUMP_INTERRUPTED = [
    ("no flag", [ct_message(17) + done()], False, 1),
    ("on an entry", [ct_message(17, flags=INTR) + done()], True, 1),
    ("on a later entry", [ct_message(17), ct_message(6, state=3, flags=INTR) + done()], True, 2),
    ("only on NLMSG_DONE", [ct_message(17) + ct_message(17) + done(flags=INTR)], True, 2),
    ("empty dump, flag on NLMSG_DONE", [done(flags=INTR)], True, 0),
    ("on another request's message", [ct_message(17, seq=3, flags=INTR) + ct_message(17) + done()], False, 1),
]


@pytest.mark.parametrize("chunks, interrupted, listed", [c[1:] for c in TEST_DUMP_INTERRUPTED], ids=[c[0] for c in TEST_DUMP_INTERRUPTED])
def test_dump_interrupted_flag(chunks: list[bytes], interrupted: bool, listed: int) -> None:
    result = fake_client(chunks).dump_conntrack()
    assert result.interrupted is interrupted
    assert result.listed == listed


def test_dump_error_after_entries() -> None:
    client = fake_client([ct_message(17), nl_error(errno.EPERM)])
    with pytest.raises(nl.NetlinkError) as info:
        client.dump_conntrack()
    assert info.value.errno == errno.EPERM


def test_stats_and_expectations_from_fake_socket() -> None:
    stats = message(nla(2, be32(1)) + nla(10, be32(2)), family=0, res_id=0) + message(nla(2, be32(3)), family=0, res_id=1)
    client = fake_client([stats, done()])
    assert client.stats_cpu() == [{"cpu": 0, "found": 1, "drop": 2}, {"cpu": 1, "found": 3}]
    exp_type = (nl.NFNL_SUBSYS_CTNETLINK_EXP << 8) | 0
    client = fake_client([message(b"", family=2, mtype=exp_type, seq=8) * 2 + message(b"", family=10, mtype=exp_type, seq=8), done(8)], seq=8)
    assert client.count_expectations() == {2: 2, 10: 1}


# --- real dumps captured from Linux 6.18 (tests/unit/.../fixtures/ctnetlink) -------------------------------------

_L_LINE = re.compile(r"^(?P<family>ipv[46])\s+\d+\s+(?P<proto>\w+)\s+(?P<num>\d+)\s+\d+\s+(?P<state>[A-Z_]+ )?src=(?P<src>\S+) dst=(?P<dst>\S+)")


def test_real_table_dump_matches_conntrack_l() -> None:
    data = load_fixture()
    client = fake_client([bytes.fromhex(chunk) for chunk in data["table_dump"]])
    result = client.dump_conntrack(max_entries=100, decode_entry=lambda b, o, n: nl.decode_ct_entry(b, o, n, protocol_name))
    lines = data["conntrack_L_extended"]
    assert result.listed == len(lines)
    expected = {}
    for line in lines:
        match = _L_LINE.match(line)
        assert match, line
        ident = int(line.rsplit("id=", 1)[1])
        expected[ident] = match
    for entry in result.entries:
        match = expected[entry["id"]]
        assert entry["family"] == match["family"]
        assert entry["protocol"] == match["proto"]
        assert entry["original"]["src"] == match["src"]
        assert entry["original"]["dst"] == match["dst"]
        assert entry.get("tcp_state") == (match["state"].strip() if match["state"] else None)
    assert nl.summarize_counts(result.counts, protocol_name, lambda f: {2: "ipv4", 10: "ipv6"}[f]) == {
        "by_family": {"ipv4": 4, "ipv6": 1},
        "by_protocol": {"icmp": 1, "tcp": 2, "udp": 2},
        "by_tcp_state": {"ESTABLISHED": 1, "TIME_WAIT": 1},
    }


def test_real_stats_dump_matches_conntrack_s() -> None:
    data = load_fixture()
    client = fake_client([bytes.fromhex(chunk) for chunk in data["stats_cpu_dump"]])
    rows = client.stats_cpu()
    expected = []
    for line in data["conntrack_S"]:
        fields = dict(item.split("=") for item in line.split())
        expected.append({key: int(value) for key, value in fields.items()})
    assert rows == expected


def test_real_empty_dying_dump() -> None:
    data = load_fixture()
    client = fake_client([bytes.fromhex(chunk) for chunk in data["dying_dump"]])
    result = client.dump_conntrack(nl.IPCTNL_MSG_CT_GET_DYING)
    assert result.listed == 0 and result.counts == {}
