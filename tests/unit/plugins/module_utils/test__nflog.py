# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno
import json
import os
import struct

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _nflog as nflog

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "nflog", "nflog-6.18.44.json")

with open(FIXTURE) as _handle:
    CAPTURED = json.load(_handle)


def records_of(datagrams):
    records = []
    for datagram in datagrams:
        for message_type, _flags, _seq, payload in nflog.iter_messages(bytes.fromhex(datagram)):
            assert message_type == nflog.PACKET_MSG_TYPE
            records.append(nflog.parse_packet(payload))
    return records


VETH = records_of(CAPTURED["veth_mix"]["datagrams"])
LOOPBACK = records_of(CAPTURED["loopback_synfin"]["datagrams"])


@pytest.mark.parametrize(
    "index, family, prefix, indev, payload_len, seq",
    [
        (0, 2, "nf_ct_proto_6: invalid tcp flag combination ", 2, 40, 0),
        (1, 2, "nf_ct_proto_6: invalid tcp flag combination ", 2, 40, 1),
        (2, 2, "nf_ct_proto_17: truncated/malformed packet ", 2, 38, 2),
        (3, 2, "nf_ct_proto_1: invalid icmp type ", 2, 28, 3),
        (4, 10, "nf_ct_proto_6: invalid tcp flag combination ", 2, 60, 4),
    ],
)
def test_parse_captured_veth_packets(index, family, prefix, indev, payload_len, seq):
    record = VETH[index]
    assert (record.family, record.prefix, record.indev, record.outdev) == (family, prefix, indev, None)
    assert len(record.payload) == payload_len
    assert record.payload[0] >> 4 == (4 if family == 2 else 6)
    # the namespace's global counter had already counted 5 events of an earlier instance: not a loss
    assert record.seq == seq and record.seq_global == seq + 6
    assert record.hook == 0  # conntrack passes hook 0 whatever the real hook
    assert record.hw_protocol == (0x0800 if family == 2 else 0x86DD)
    assert record.timestamp is not None and record.timestamp > 1.7e9


def test_loopback_packets_are_judged_at_two_hooks_and_the_rst_too():
    assert [(r.indev is None, r.outdev is None, nflog.split_prefix(r.prefix)[1]) for r in LOOPBACK] == [
        (True, False, "invalid tcp flag combination"),
        (False, True, "invalid tcp flag combination"),
        (True, False, "invalid new"),
        (False, True, "invalid new"),
    ]


@pytest.mark.parametrize(
    "prefix, expected",
    [
        ("nf_ct_proto_6: invalid tcp flag combination ", (6, "invalid tcp flag combination")),
        ("nf_ct_proto_17: truncated/malformed packet ", (17, "truncated/malformed packet")),
        ("nf_ct_tcp: invalid TCP flag combination ", (None, "invalid TCP flag combination")),
        ("something else", (None, "something else")),
        ("", (None, "")),
    ],
)
def test_split_prefix(prefix, expected):
    assert nflog.split_prefix(prefix) == expected


@pytest.mark.parametrize(
    "sequence, lost",
    [
        ([0, 1, 2, 3], 0),
        ([0, 1, 5, 6], 3),
        ([10, 20], 9),
        ([0xFFFFFFFE, 0xFFFFFFFF, 0, 1], 0),
        ([0xFFFFFFFE, 2], 3),
        ([7], 0),
    ],
)
def test_sequence_gaps_are_exact_losses(sequence, lost):
    tracker = nflog.SequenceTracker()
    for seq in sequence:
        tracker.note(seq)
    assert tracker.lost == lost


def test_unnumbered_messages_are_counted_not_guessed():
    tracker = nflog.SequenceTracker()
    assert tracker.note(None) == 0
    assert (tracker.lost, tracker.unnumbered) == (0, 1)


@pytest.mark.parametrize("name, code", [("eperm", errno.EPERM), ("ebusy", errno.EBUSY), ("ack", 0)])
def test_config_replies_from_the_kernel(name, code):
    messages = list(nflog.iter_messages(bytes.fromhex(CAPTURED["config_replies"][name])))
    assert len(messages) == 1
    message_type, _flags, _seq, payload = messages[0]
    assert message_type == nflog.NLMSG_ERROR
    assert -struct.unpack_from("=i", payload)[0] == code


def test_bind_request_layout():
    raw = nflog.config_bind(0, 7)
    length, message_type, flags, seq, pid = struct.unpack_from("=IHHII", raw)
    assert (length, message_type, flags, seq, pid) == (len(raw), 0x0401, 0x5, 7, 0)
    assert raw[16:20] == b"\x00\x00\x00\x00"  # AF_UNSPEC, version 0, group 0 big endian
    assert raw[20:] == struct.pack("=HH", 5, nflog.NFULA_CFG_CMD) + b"\x01\x00\x00\x00"
    assert nflog.config_bind(0x102, 1)[18:20] == b"\x01\x02"


def test_parameters_request_asks_for_sequence_numbers_and_bounded_copy():
    raw = nflog.config_parameters(0, 1, copy_range=256, qthreshold=1, timeout_cs=10, nlbufsiz=65536)
    attrs = {attr: raw[start:end] for attr, start, end in nflog.iter_attrs(raw, 20, len(raw))}
    assert attrs[nflog.NFULA_CFG_MODE] == struct.pack("!IBx", 256, nflog.NFULNL_COPY_PACKET)
    assert attrs[nflog.NFULA_CFG_FLAGS] == struct.pack("!H", nflog.NFULNL_CFG_F_SEQ | nflog.NFULNL_CFG_F_SEQ_GLOBAL)
    assert struct.unpack("!I", attrs[nflog.NFULA_CFG_NLBUFSIZ])[0] == 65536
    assert nflog.NFULNL_CFG_CMD_BIND not in attrs  # parameters only: never a PF_BIND that would rebind nf_log


@pytest.mark.parametrize(
    "datagram",
    [b"", b"\x10\x00\x00", struct.pack("=IHHII", 15, 0x400, 0, 0, 0), struct.pack("=IHHII", 100, 0x400, 0, 0, 0) + b"x" * 8],
)
def test_truncated_datagrams_yield_nothing(datagram):
    assert list(nflog.iter_messages(datagram)) == []


def test_packet_without_attributes():
    record = nflog.parse_packet(b"\x02\x00\x00\x00")
    assert (record.family, record.prefix, record.payload, record.seq, record.timestamp) == (2, "", b"", None, None)


def test_error_names_a_taken_group():
    sock = nflog.NflogSocket.__new__(nflog.NflogSocket)
    sock.group = 0
    assert isinstance(sock._error(errno.EPERM), nflog.GroupTaken)
    assert isinstance(sock._error(errno.EBUSY), nflog.GroupTaken)
    other = sock._error(errno.ENOMEM)
    assert not isinstance(other, nflog.GroupTaken) and other.errno == errno.ENOMEM


@pytest.mark.parametrize(
    "text, holders",
    [
        # 6.18, groups 0 and 7 bound by two sockets of one process (the second port id is a negative pid)
        ("    0  15614     0 2   256     10  1\n    7 3693955907     0 2    64     10  1\n", {0: 15614, 7: 3693955907}),
        ("", {}),
        ("garbage\n  1\n", {}),
    ],
)
def test_parse_instances(text, holders):
    assert nflog.parse_instances(text) == holders
