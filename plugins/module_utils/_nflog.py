# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""nfnetlink_log over a raw NETLINK_NETFILTER socket, packed by hand (no libnetfilter_log).

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Which group conntrack logs to.
    ``nf_l4proto_log_invalid()`` (net/netfilter/nf_conntrack_proto.c) calls ``nf_log_packet()`` with
    ``loginfo == NULL``; when ``net.netfilter.nf_log.<family>`` of the namespace is bound to
    ``nfnetlink_log``, ``nfulnl_log_packet()`` then uses its ``default_loginfo``: **group 0**, copy
    length 0xffff, qthreshold 1. The prefix is ``nf_ct_proto_<IPPROTO>: <reason> `` and the hook
    number is always 0 (the caller passes 0, not the real hook). Only ``nf_log_syslog`` checks
    ``nf_log_all_netns`` (``nf_log_allowed()``); nfnetlink_log delivers in every namespace, so a child
    namespace is captured with ``nf_log_all_netns`` left at 0 and nothing reaches the kernel log.
    Both were verified on 6.18 by tests/integration/targets/nflog_capture.

Taken groups.
    A group belongs to the netlink port that bound it. ``nfulnl_recv_config()`` answers **EPERM**
    to any config message for a group another port holds (that check runs before the bind's own
    ``EBUSY``, which only the holder itself can get by binding twice). :class:`GroupTaken` is raised for
    both; nothing is changed in the kernel by the refused request. ``NFULNL_CFG_CMD_PF_BIND`` is
    never sent: it rebinds ``nf_log.<family>`` itself, which is the window's job, not the capture's.

Exact loss.
    With ``NFULNL_CFG_F_SEQ`` each message carries the instance's own sequence number, which the
    kernel increments for every message it builds, whether or not the socket can take it. A gap
    of ``n`` between two received messages is exactly ``n`` messages lost (dropped with ENOBUFS).
    Once a netlink socket overflows, the kernel marks it congested and drops every message until the
    reader has emptied the queue, so a burst can lose thousands at once, possibly after the last
    message that will ever arrive. The socket's own drop counter (``SO_MEMINFO``, ``SK_MEMINFO_DROPS``)
    counts those too: it is the exact loss at any moment, and the sequence gaps confirm it.
    conntrack's events always reach user space one per datagram: ``default_loginfo`` carries
    ``qthreshold`` 1, which overrides the instance's, so batching settings have no effect on them.
    ``NFULA_SEQ_GLOBAL`` counts over every group of the namespace, so it orders events but its
    gaps are not losses. One loss no counter shows: ``nfulnl_log_packet()`` failing to allocate its
    buffer under memory pressure, before a sequence number is taken.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import (
    NETLINK_NETFILTER,
    NLM_F_ACK,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    align4,
    iter_attrs,
    msg_type,
)

SO_RCVBUFFORCE = 33
SO_MEMINFO = 55
SK_MEMINFO_DROPS = 8  # index in the u32 array SO_MEMINFO returns (since 4.7)

NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
PACKET_MSG_TYPE = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET

NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_NLBUFSIZ, NFULA_CFG_TIMEOUT, NFULA_CFG_QTHRESH, NFULA_CFG_FLAGS = 1, 2, 3, 4, 5, 6
NFULNL_CFG_CMD_BIND, NFULNL_CFG_CMD_UNBIND = 1, 2
NFULNL_COPY_PACKET = 2
NFULNL_CFG_F_SEQ, NFULNL_CFG_F_SEQ_GLOBAL = 0x1, 0x2

NFULA_PACKET_HDR, NFULA_MARK, NFULA_TIMESTAMP, NFULA_IFINDEX_INDEV, NFULA_IFINDEX_OUTDEV = 1, 2, 3, 4, 5
NFULA_PAYLOAD, NFULA_PREFIX, NFULA_SEQ, NFULA_SEQ_GLOBAL = 9, 10, 12, 13

CONNTRACK_GROUP = 0
DEFAULT_COPY_RANGE = 256  # enough for IPv6 + TCP with options, and bounds the pcapng
DEFAULT_RCVBUF = 32 * 1024 * 1024
DEFAULT_QTHRESHOLD = 1  # what conntrack's default_loginfo imposes anyway
DEFAULT_TIMEOUT_CS = 10  # flush a partly filled batch after 0.1 s (hundredths of a second)

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("=BBH")  # res_id is big endian: packed separately
_NLATTR = struct.Struct("=HH")


class NflogError(Exception):
    """The kernel refused a configuration request."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.errno = code


class GroupTaken(NflogError):
    """Another netlink port (ulogd, a second collector...) holds the group."""


class Record(t.NamedTuple):
    """One NFULNL_MSG_PACKET: one call of the logger by the kernel."""

    family: int
    hook: int
    hw_protocol: int
    prefix: str
    indev: int | None
    outdev: int | None
    payload: bytes
    seq: int | None
    seq_global: int | None
    timestamp: float | None
    mark: int | None


def pack_attr(attr_type: int, data: bytes) -> bytes:
    length = _NLATTR.size + len(data)
    return _NLATTR.pack(length, attr_type) + data + b"\0" * (align4(length) - length)


def pack_config(group: int, attrs: t.Sequence[tuple[int, bytes]], seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    """One NFULNL_MSG_CONFIG request for ``group`` asking for an ACK."""
    body = _NFGENMSG.pack(family, 0, 0)[:2] + struct.pack("!H", group) + b"".join(pack_attr(a, d) for a, d in attrs)
    config_type = msg_type(NFNL_SUBSYS_ULOG, NFULNL_MSG_CONFIG)
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), config_type, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def config_bind(group: int, seq: int) -> bytes:
    return pack_config(group, [(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_BIND))], seq)


def config_unbind(group: int, seq: int) -> bytes:
    return pack_config(group, [(NFULA_CFG_CMD, struct.pack("B", NFULNL_CFG_CMD_UNBIND))], seq)


def config_parameters(group: int, seq: int, copy_range: int, qthreshold: int, timeout_cs: int, nlbufsiz: int | None = None) -> bytes:
    """Copy mode packet (bounded), batching, and per-instance plus global sequence numbers.

    ``nlbufsiz`` None keeps the kernel's default (one page): every datagram is allocated that large
    before netlink trims it, so a larger one only costs the packet path more.
    """
    attrs = [(NFULA_CFG_MODE, struct.pack("!IBx", copy_range, NFULNL_COPY_PACKET))]
    if nlbufsiz is not None:
        attrs.append((NFULA_CFG_NLBUFSIZ, struct.pack("!I", nlbufsiz)))
    attrs += [
        (NFULA_CFG_QTHRESH, struct.pack("!I", qthreshold)),
        (NFULA_CFG_TIMEOUT, struct.pack("!I", timeout_cs)),
        (NFULA_CFG_FLAGS, struct.pack("!H", NFULNL_CFG_F_SEQ | NFULNL_CFG_F_SEQ_GLOBAL)),
    ]
    return pack_config(group, attrs, seq)


def iter_messages(buffer: bytes) -> t.Iterator[tuple[int, int, int, bytes]]:
    """(type, flags, seq, payload) of each netlink message in one datagram; stops at a truncated one."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(buffer):
        length, message_type, flags, seq, _pid = _NLMSGHDR.unpack_from(buffer, offset)
        if length < _NLMSGHDR.size or offset + length > len(buffer):
            return
        yield message_type, flags, seq, buffer[offset + _NLMSGHDR.size : offset + length]
        offset += align4(length)


def _be32(data: bytes) -> int | None:
    return struct.unpack("!I", data[:4])[0] if len(data) >= 4 else None


def parse_packet(payload: bytes) -> Record:
    """Parse the body (nfgenmsg + attributes) of one NFULNL_MSG_PACKET."""
    family = payload[0] if payload else 0
    values = {attr: payload[start:end] for attr, start, end in iter_attrs(payload, _NFGENMSG.size, len(payload))}
    hw_protocol = hook = 0
    header = values.get(NFULA_PACKET_HDR, b"")
    if len(header) >= 3:
        hw_protocol, hook = struct.unpack("!HB", header[:3])
    timestamp = None
    stamp = values.get(NFULA_TIMESTAMP, b"")
    if len(stamp) >= 16:
        seconds, micros = struct.unpack("!QQ", stamp[:16])
        timestamp = seconds + micros / 1e6
    return Record(
        family=family,
        hook=hook,
        hw_protocol=hw_protocol,
        prefix=values.get(NFULA_PREFIX, b"").split(b"\0", 1)[0].decode("utf-8", "replace"),
        indev=_be32(values.get(NFULA_IFINDEX_INDEV, b"")),
        outdev=_be32(values.get(NFULA_IFINDEX_OUTDEV, b"")),
        payload=values.get(NFULA_PAYLOAD, b""),
        seq=_be32(values.get(NFULA_SEQ, b"")),
        seq_global=_be32(values.get(NFULA_SEQ_GLOBAL, b"")),
        timestamp=timestamp,
        mark=_be32(values.get(NFULA_MARK, b"")),
    )


def split_prefix(prefix: str) -> tuple[int | None, str]:
    """``nf_ct_proto_6: invalid tcp flag combination `` -> (6, "invalid tcp flag combination")."""
    head, sep, reason = prefix.partition(": ")
    if not sep or not head.startswith("nf_ct_"):
        return None, prefix.strip()
    number = head[len("nf_ct_proto_") :] if head.startswith("nf_ct_proto_") else ""
    return (int(number) if number.isdigit() else None), reason.strip()


NFULNL_INSTANCES_PROC = "/proc/net/netfilter/nfnetlink_log"


def parse_instances(text: str) -> dict[int, int]:
    """Bound groups of a namespace and the netlink port holding each, from /proc/net/netfilter/nfnetlink_log.

    Each line is ``group portid qlen copy_mode copy_range flush_timeout use``. Read inside a namespace,
    it tells whether conntrack's group is taken (by ulogd, say) without trying to bind it.
    """
    holders = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit() and fields[1].isdigit():
            holders[int(fields[0])] = int(fields[1])
    return holders


class SequenceTracker:
    """Exact count of messages lost between received ones, from NFULA_SEQ (32-bit, wraps)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.lost = 0
        self.unnumbered = 0

    def note(self, seq: int | None) -> int:
        """Record one received sequence number; return how many were lost just before it."""
        if seq is None:
            self.unnumbered += 1
            return 0
        gap = 0 if self.last is None else (seq - self.last - 1) & 0xFFFFFFFF
        self.last = seq
        self.lost += gap
        return gap


class NflogSocket:
    """A socket bound to one nfnetlink_log group, in the namespace it was created in."""

    def __init__(self, group: int = CONNTRACK_GROUP, rcvbuf: int = DEFAULT_RCVBUF) -> None:
        self.group = group
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.bound = False
        self.overruns = 0
        self.sequence = SequenceTracker()
        self._seq = 0
        try:
            self._set_rcvbuf(rcvbuf)
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise

    def _set_rcvbuf(self, size: int) -> None:
        try:  # root may exceed net.core.rmem_max; others get what rmem_max allows
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    @property
    def rcvbuf(self) -> int:
        return self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def drops(self) -> int | None:
        """Messages the kernel dropped because this socket was full (sk_drops), tail included; None if unknown."""
        try:
            raw = self.sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 4 * (SK_MEMINFO_DROPS + 1))
        except OSError:
            return None
        if len(raw) < 4 * (SK_MEMINFO_DROPS + 1):
            return None
        return struct.unpack_from("=I", raw, 4 * SK_MEMINFO_DROPS)[0]

    def fileno(self) -> int:
        return self.sock.fileno()

    def _request(self, message_for_seq: t.Callable[[int], bytes]) -> None:
        self._seq += 1
        self.sock.send(message_for_seq(self._seq))
        self._wait_ack(self._seq)

    def _wait_ack(self, seq: int) -> None:
        while True:
            data = self.sock.recv(65536)
            for message_type, _flags, message_seq, payload in iter_messages(data):
                if message_type == NLMSG_ERROR and message_seq == seq:
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else errno.EPROTO
                    if code:
                        raise self._error(code)
                    return

    def _error(self, code: int) -> NflogError:
        text = "nfnetlink_log group %d: %s" % (self.group, os.strerror(code))
        if code in (errno.EPERM, errno.EBUSY):
            return GroupTaken(text + " (another listener holds the group)", code)
        return NflogError(text, code)

    def bind(
        self,
        copy_range: int = DEFAULT_COPY_RANGE,
        qthreshold: int = DEFAULT_QTHRESHOLD,
        timeout_cs: int = DEFAULT_TIMEOUT_CS,
        nlbufsiz: int | None = None,
    ) -> None:
        """Bind the group and configure it; raises GroupTaken, never takes the group over."""
        self._request(lambda seq: config_bind(self.group, seq))
        self.bound = True
        self._request(lambda seq: config_parameters(self.group, seq, copy_range, qthreshold, timeout_cs, nlbufsiz))

    def receive(self, bufsize: int = 262144) -> list[Record]:
        """Records of one datagram (one batch); an ENOBUFS is counted and yields no records."""
        try:
            data = self.sock.recv(bufsize, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        except OSError as exc:
            if exc.errno != errno.ENOBUFS:
                raise
            self.overruns += 1
            return []
        records = []
        for message_type, _flags, _seq, payload in iter_messages(data):
            if message_type == PACKET_MSG_TYPE:
                record = parse_packet(payload)
                self.sequence.note(record.seq)
                records.append(record)
        return records

    def close(self) -> None:
        """Unbind (only a group this socket holds) and close; closing alone also frees the group."""
        try:
            if self.bound:
                self.sock.send(config_unbind(self.group, self._seq + 1))
        except OSError:
            pass  # the socket is closed next, which releases the instance in the kernel anyway
        finally:
            self.bound = False
            self.sock.close()
