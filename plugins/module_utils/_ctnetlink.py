# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A small ctnetlink client in pure Python: dump conntrack lists and CPU statistics.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

It talks to the kernel over ``socket.AF_NETLINK``/``NETLINK_NETFILTER`` with the standard library
only. Dumps are streamed: each received buffer is decoded and counted before the next one is read,
so memory use does not grow with the size of the table. Only the attributes the facts need are
decoded (family, protocol number, TCP state); full entries are decoded only on request.

Numbers come from the kernel's UAPI headers ``linux/netlink.h``, ``linux/netfilter/nfnetlink.h``,
``linux/netfilter/nfnetlink_conntrack.h``, ``linux/netfilter/nf_conntrack_common.h`` and
``linux/netfilter/nf_conntrack_tcp.h``.

The functions that decode bytes are pure and take a buffer plus offsets; the socket class is a thin
loop around them. Errors are raised as :class:`NetlinkError` carrying the kernel's errno.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import typing as t

# linux/netlink.h
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_BROADCAST_ERROR = 4
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF  # ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

# linux/netfilter/nfnetlink.h
NFNETLINK_V0 = 0
NFNL_SUBSYS_CTNETLINK = 1
NFNL_SUBSYS_CTNETLINK_EXP = 2

# linux/netfilter/nfnetlink_conntrack.h: enum cntl_msg_types / ctnl_exp_msg_types
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
IPCTNL_MSG_CT_GET_CTRZERO = 3
IPCTNL_MSG_CT_GET_STATS_CPU = 4
IPCTNL_MSG_CT_GET_STATS = 5
IPCTNL_MSG_CT_GET_DYING = 6
IPCTNL_MSG_CT_GET_UNCONFIRMED = 7
IPCTNL_MSG_EXP_GET = 1

# enum ctattr_type
CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_TIMEOUT = 7
CTA_MARK = 8
CTA_USE = 11
CTA_ID = 12
CTA_ZONE = 18
# enum ctattr_tuple
CTA_TUPLE_IP = 1
CTA_TUPLE_PROTO = 2
CTA_TUPLE_ZONE = 3
# enum ctattr_ip
CTA_IP_V4_SRC = 1
CTA_IP_V4_DST = 2
CTA_IP_V6_SRC = 3
CTA_IP_V6_DST = 4
# enum ctattr_l4proto
CTA_PROTO_NUM = 1
CTA_PROTO_SRC_PORT = 2
CTA_PROTO_DST_PORT = 3
CTA_PROTO_ICMP_ID = 4
CTA_PROTO_ICMP_TYPE = 5
CTA_PROTO_ICMP_CODE = 6
CTA_PROTO_ICMPV6_ID = 7
CTA_PROTO_ICMPV6_TYPE = 8
CTA_PROTO_ICMPV6_CODE = 9
# enum ctattr_protoinfo / ctattr_protoinfo_tcp
CTA_PROTOINFO_TCP = 1
CTA_PROTOINFO_TCP_STATE = 1

IPPROTO_TCP = 6

# enum ctattr_stats_cpu, named as `conntrack -S` prints them. Numbers the kernel stopped sending
# keep their historic names; numbers unknown here are reported as attr_<N> by stats_attr_name().
CTA_STATS_NAMES = {
    1: "searched",
    2: "found",
    3: "new",
    4: "invalid",
    5: "ignore",
    6: "delete",
    7: "delete_list",
    8: "insert",
    9: "insert_failed",
    10: "drop",
    11: "early_drop",
    12: "error",
    13: "search_restart",
    14: "clash_resolve",
    15: "chaintoolong",
}

# enum tcp_conntrack, spelled as the kernel's tcp_conntrack_names[] (value 9 is TCP_CONNTRACK_SYN_SENT2).
TCP_STATE_NAMES = (
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
)

# enum ip_conntrack_status bits (nf_conntrack_common.h).
STATUS_BITS = (
    "EXPECTED",
    "SEEN_REPLY",
    "ASSURED",
    "CONFIRMED",
    "SRC_NAT",
    "DST_NAT",
    "SEQ_ADJUST",
    "SRC_NAT_DONE",
    "DST_NAT_DONE",
    "DYING",
    "FIXED_TIMEOUT",
    "TEMPLATE",
    "UNTRACKED",
    "HELPER",
    "OFFLOAD",
    "HW_OFFLOAD",
)

AF_INET = 2
AF_INET6 = 10

RCVBUF_BYTES = 4 << 20
RECV_CHUNK = 1 << 20

_NLMSGHDR = struct.Struct("=IHHII")
_NLMSGHDR_HEAD = struct.Struct("=IH")
_NLATTR = struct.Struct("=HH")
_NFGENMSG = struct.Struct("=BBH")  # res_id is big-endian on the wire; see message_res_id()
_BE16 = struct.Struct(">H")
_BE32 = struct.Struct(">I")
_BE64 = struct.Struct(">Q")
_S32 = struct.Struct("=i")
_ORIG_HEAD = struct.Struct("=HHHH")  # CTA_TUPLE_ORIG header + CTA_TUPLE_IP header
_PROTO_HEAD = struct.Struct("=HHHHB")  # CTA_TUPLE_PROTO header + CTA_PROTO_NUM header + its u8

NLMSG_HDRLEN = 16
NFGEN_HDRLEN = 4
PAYLOAD_OFFSET = NLMSG_HDRLEN + NFGEN_HDRLEN

# A key of the streaming breakdown: (l3 family, IP protocol number, TCP state number or -1).
CountKey = t.Tuple[int, int, int]


class NetlinkError(Exception):
    """The kernel answered with NLMSG_ERROR, or the socket itself failed; ``errno`` is positive."""

    def __init__(self, err: int, where: str) -> None:
        self.errno = err
        self.where = where
        super().__init__(f"{where}: {os.strerror(err)} ({errno.errorcode.get(err, err)})")


def align4(length: int) -> int:
    return (length + 3) & ~3


def msg_type(subsys: int, msg: int) -> int:
    """nfnetlink message type: subsystem id in the high byte, message in the low byte."""
    return (subsys << 8) | msg


def build_request(subsys: int, msg: int, family: int = 0, seq: int = 1, flags: int = NLM_F_REQUEST | NLM_F_DUMP, res_id: int = 0) -> bytes:
    """Build an nfnetlink request without attributes (a dump request, by default)."""
    length = NLMSG_HDRLEN + NFGEN_HDRLEN
    return _NLMSGHDR.pack(length, msg_type(subsys, msg), flags, seq, 0) + struct.pack("=BB", family, NFNETLINK_V0) + _BE16.pack(res_id)


def iter_attrs(buf: t.Any, start: int, end: int) -> t.Iterator[tuple[int, int, int]]:
    """Yield ``(type, payload_start, payload_end)`` for the netlink attributes in ``buf[start:end]``.

    The type has the NLA_F_NESTED / NLA_F_NET_BYTEORDER flags cleared. A truncated attribute stops
    the walk instead of raising: the kernel never sends one, and a decoder must not crash on it.
    """
    pos = start
    while pos + 4 <= end:
        length, atype = _NLATTR.unpack_from(buf, pos)
        if length < 4 or pos + length > end:
            return
        yield atype & NLA_TYPE_MASK, pos + 4, pos + length
        pos += align4(length)


def find_attr(buf: t.Any, start: int, end: int, wanted: int) -> tuple[int, int] | None:
    """Return ``(payload_start, payload_end)`` of the first attribute of type ``wanted``, or None."""
    for atype, pstart, pend in iter_attrs(buf, start, end):
        if atype == wanted:
            return pstart, pend
    return None


def error_code(buf: t.Any, off: int, msglen: int) -> int:
    """The positive errno of an NLMSG_ERROR message (0 for an ACK)."""
    if msglen < NLMSG_HDRLEN + 4:
        return errno.EPROTO
    return -_S32.unpack_from(buf, off + NLMSG_HDRLEN)[0]


def message_family(buf: t.Any, off: int) -> int:
    """nfgenmsg.nfgen_family of the message at ``off``: the entry's layer-3 family."""
    return buf[off + NLMSG_HDRLEN]


def message_res_id(buf: t.Any, off: int) -> int:
    """nfgenmsg.res_id (big-endian): the CPU number in IPCTNL_MSG_CT_GET_STATS_CPU replies."""
    return _BE16.unpack_from(buf, off + NLMSG_HDRLEN + 2)[0]


def _tuple_protonum(buf: t.Any, start: int, end: int) -> int:
    proto = find_attr(buf, start, end, CTA_TUPLE_PROTO)
    if proto is None:
        return -1
    num = find_attr(buf, proto[0], proto[1], CTA_PROTO_NUM)
    if num is None or num[1] <= num[0]:
        return -1
    return buf[num[0]]


def _tcp_state(buf: t.Any, start: int, end: int) -> int:
    """TCP state number from the message's top-level attributes, or -1."""
    info = find_attr(buf, start, end, CTA_PROTOINFO)
    if info is None:
        return -1
    tcp = find_attr(buf, info[0], info[1], CTA_PROTOINFO_TCP)
    if tcp is None:
        return -1
    state = find_attr(buf, tcp[0], tcp[1], CTA_PROTOINFO_TCP_STATE)
    if state is None or state[1] <= state[0]:
        return -1
    return buf[state[0]]


def ct_count_key(buf: t.Any, off: int, msglen: int) -> CountKey:
    """Return ``(family, protonum, tcp_state)`` of the conntrack message at ``off``.

    Fast path: ctnetlink puts CTA_TUPLE_ORIG first, with CTA_TUPLE_IP then CTA_TUPLE_PROTO whose
    first attribute is CTA_PROTO_NUM; that layout is checked at every step and any surprise falls
    back to a full attribute walk. The TCP state is looked up only for TCP entries.
    """
    end = off + msglen
    family = buf[off + NLMSG_HDRLEN]
    a = off + PAYLOAD_OFFSET
    proto = -1
    after_orig = a
    if a + 16 <= end:
        alen, atype = _NLATTR.unpack_from(buf, a)
        if atype & NLA_TYPE_MASK == CTA_TUPLE_ORIG and a + alen <= end:
            after_orig = a + align4(alen)
            iplen, iptype = _NLATTR.unpack_from(buf, a + 4)
            p = a + 4 + align4(iplen)
            if iptype & NLA_TYPE_MASK == CTA_TUPLE_IP and p + 9 <= a + alen:
                plen, ptype = _NLATTR.unpack_from(buf, p)
                nlen, ntype = _NLATTR.unpack_from(buf, p + 4)
                if ptype & NLA_TYPE_MASK == CTA_TUPLE_PROTO and ntype & NLA_TYPE_MASK == CTA_PROTO_NUM and nlen >= 5:
                    proto = buf[p + 8]
            if proto < 0:
                proto = _tuple_protonum(buf, a + 4, a + alen)
        else:
            orig = find_attr(buf, a, end, CTA_TUPLE_ORIG)
            if orig is not None:
                proto = _tuple_protonum(buf, orig[0], orig[1])
    state = _tcp_state(buf, after_orig, end) if proto == IPPROTO_TCP else -1
    return family, proto, state


def _ip_text(family: int, data: bytes) -> str:
    try:
        return socket.inet_ntop(socket.AF_INET6 if family == AF_INET6 else socket.AF_INET, data)
    except (ValueError, OSError):
        return data.hex()


def decode_tuple(buf: t.Any, start: int, end: int, family: int) -> dict[str, t.Any]:
    """Decode a CTA_TUPLE_* nest into ``src``/``dst``/``protonum`` and ports or ICMP fields."""
    out: dict[str, t.Any] = {}
    for atype, pstart, pend in iter_attrs(buf, start, end):
        if atype == CTA_TUPLE_IP:
            for itype, istart, iend in iter_attrs(buf, pstart, pend):
                if itype in (CTA_IP_V4_SRC, CTA_IP_V6_SRC):
                    out["src"] = _ip_text(family, bytes(buf[istart:iend]))
                elif itype in (CTA_IP_V4_DST, CTA_IP_V6_DST):
                    out["dst"] = _ip_text(family, bytes(buf[istart:iend]))
        elif atype == CTA_TUPLE_PROTO:
            for ptype, ps, pe in iter_attrs(buf, pstart, pend):
                if ptype == CTA_PROTO_NUM and pe > ps:
                    out["protonum"] = buf[ps]
                elif ptype == CTA_PROTO_SRC_PORT and pe - ps >= 2:
                    out["sport"] = _BE16.unpack_from(buf, ps)[0]
                elif ptype == CTA_PROTO_DST_PORT and pe - ps >= 2:
                    out["dport"] = _BE16.unpack_from(buf, ps)[0]
                elif ptype in (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMPV6_ID) and pe - ps >= 2:
                    out["icmp_id"] = _BE16.unpack_from(buf, ps)[0]
                elif ptype in (CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMPV6_TYPE) and pe > ps:
                    out["icmp_type"] = buf[ps]
                elif ptype in (CTA_PROTO_ICMP_CODE, CTA_PROTO_ICMPV6_CODE) and pe > ps:
                    out["icmp_code"] = buf[ps]
        elif atype == CTA_TUPLE_ZONE and pend - pstart >= 2:
            out["zone"] = _BE16.unpack_from(buf, pstart)[0]
    return out


def status_flags(status: int) -> list[str]:
    return [name for bit, name in enumerate(STATUS_BITS) if status & (1 << bit)] + [
        f"bit_{bit}" for bit in range(len(STATUS_BITS), 32) if status & (1 << bit)
    ]


def tcp_state_name(state: int) -> str:
    if 0 <= state < len(TCP_STATE_NAMES):
        return TCP_STATE_NAMES[state]
    return f"state_{state}"


def stats_attr_name(number: int) -> str:
    return CTA_STATS_NAMES.get(number, f"attr_{number}")


def _be_uint(buf: t.Any, start: int, end: int) -> int | None:
    size = end - start
    if size == 4:
        return _BE32.unpack_from(buf, start)[0]
    if size == 8:
        return _BE64.unpack_from(buf, start)[0]
    if size == 2:
        return _BE16.unpack_from(buf, start)[0]
    if size == 1:
        return buf[start]
    return None


def decode_ct_entry(buf: t.Any, off: int, msglen: int, protocol_name: t.Callable[[int], str] = str) -> dict[str, t.Any]:
    """Decode one conntrack message into a JSON-friendly dict (for the optional entry lists)."""
    end = off + msglen
    family = message_family(buf, off)
    entry: dict[str, t.Any] = {"family": {AF_INET: "ipv4", AF_INET6: "ipv6"}.get(family, str(family))}
    for atype, pstart, pend in iter_attrs(buf, off + PAYLOAD_OFFSET, end):
        if atype == CTA_TUPLE_ORIG:
            orig = decode_tuple(buf, pstart, pend, family)
            if "protonum" in orig:
                entry["protocol"] = protocol_name(orig["protonum"])
            entry["original"] = orig
        elif atype == CTA_TUPLE_REPLY:
            entry["reply"] = decode_tuple(buf, pstart, pend, family)
        elif atype == CTA_STATUS:
            status = _be_uint(buf, pstart, pend)
            if status is not None:
                entry["status"] = status_flags(status)
        elif atype == CTA_TIMEOUT:
            entry["timeout"] = _be_uint(buf, pstart, pend)
        elif atype == CTA_MARK:
            entry["mark"] = _be_uint(buf, pstart, pend)
        elif atype == CTA_USE:
            entry["use"] = _be_uint(buf, pstart, pend)
        elif atype == CTA_ID:
            entry["id"] = _be_uint(buf, pstart, pend)
        elif atype == CTA_ZONE:
            entry["zone"] = _be_uint(buf, pstart, pend)
        elif atype == CTA_PROTOINFO:
            state = _tcp_state(buf, off + PAYLOAD_OFFSET, end)
            if state >= 0:
                entry["tcp_state"] = tcp_state_name(state)
    return entry


def decode_stats_cpu(buf: t.Any, off: int, msglen: int) -> tuple[int, dict[str, int]]:
    """Decode one IPCTNL_MSG_CT_GET_STATS_CPU reply into ``(cpu, {counter name: value})``."""
    counters: dict[str, int] = {}
    for atype, pstart, pend in iter_attrs(buf, off + PAYLOAD_OFFSET, off + msglen):
        value = _be_uint(buf, pstart, pend)
        if value is not None:
            counters[stats_attr_name(atype)] = value
    return message_res_id(buf, off), counters


def iter_messages(buf: t.Any, length: int, seq: int | None = None) -> t.Iterator[tuple[int, int, int, int]]:
    """Yield ``(type, flags, offset, msglen)`` for each netlink message in ``buf[:length]``.

    NLMSG_ERROR with a non-zero code raises NetlinkError; NLMSG_DONE is yielded so the caller can
    stop; messages of another sequence number (``seq`` given) are skipped.
    """
    off = 0
    while off + NLMSG_HDRLEN <= length:
        msglen, mtype, mflags, mseq, _pid = _NLMSGHDR.unpack_from(buf, off)
        if msglen < NLMSG_HDRLEN or off + msglen > length:
            raise NetlinkError(errno.EPROTO, "truncated netlink message")
        if seq is None or mseq == seq:
            if mtype == NLMSG_ERROR:
                code = error_code(buf, off, msglen)
                if code:
                    raise NetlinkError(code, "kernel refused the request")
                yield NLMSG_DONE, mflags, off, msglen
            else:
                yield mtype, mflags, off, msglen
        off += align4(msglen)


def pack_count_key(family: int, proto: int, state: int) -> int:
    """Pack a count key into one int for the hot loop: family << 24 | proto << 8 | state.

    A missing protocol number is stored as 256 and a missing TCP state as 255.
    """
    return (family << 24) | ((proto if proto >= 0 else 0x100) << 8) | (state if 0 <= state < 0xFF else 0xFF)


def unpack_count_keys(packed: dict[int, int]) -> dict[CountKey, int]:
    """Turn the hot loop's packed integer keys (see pack_count_key) back into tuples."""
    counts: dict[CountKey, int] = {}
    for key, number in packed.items():
        family, proto, state = key >> 24, (key >> 8) & 0x1FF, key & 0xFF
        ckey = (family, -1 if proto == 0x100 else proto, -1 if state == 0xFF else state)
        counts[ckey] = counts.get(ckey, 0) + number
    return counts


class DumpResult:
    """What a streaming dump produced: the count breakdown and, optionally, the first entries.

    ``interrupted`` is true when the kernel set NLM_F_DUMP_INTR on any message of the dump (an entry or
    the final NLMSG_DONE): the table changed under the dump, so the listing is not a consistent snapshot.
    """

    def __init__(self) -> None:
        self.counts: dict[CountKey, int] = {}
        self.listed = 0
        self.entries: list[dict[str, t.Any]] = []
        self.interrupted = False

    def breakdown(self, protocol_name: t.Callable[[int], str], family_name: t.Callable[[int], str]) -> dict[str, t.Any]:
        return summarize_counts(self.counts, protocol_name, family_name)


def summarize_counts(
    counts: dict[CountKey, int], protocol_name: t.Callable[[int], str], family_name: t.Callable[[int], str]
) -> dict[str, t.Any]:
    """Fold the ``(family, proto, tcp_state)`` counters into by_family / by_protocol / by_tcp_state."""
    by_family: dict[str, int] = {}
    by_protocol: dict[str, int] = {}
    by_tcp_state: dict[str, int] = {}
    for (family, proto, state), number in sorted(counts.items()):
        fname = family_name(family)
        pname = protocol_name(proto) if proto >= 0 else "unknown"
        by_family[fname] = by_family.get(fname, 0) + number
        by_protocol[pname] = by_protocol.get(pname, 0) + number
        if proto == IPPROTO_TCP:
            sname = tcp_state_name(state) if state >= 0 else "unknown"
            by_tcp_state[sname] = by_tcp_state.get(sname, 0) + number
    return {"by_family": by_family, "by_protocol": by_protocol, "by_tcp_state": by_tcp_state}


_CT_NEW_TYPE = msg_type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW)


def _dump_ended(buf: t.Any, off: int, msglen: int, mtype: int, mflags: int, result: DumpResult) -> bool:
    """The NLMSG_DONE or NLMSG_ERROR that ends a dump: True, or NetlinkError when the kernel refused it."""
    if mtype == NLMSG_ERROR:
        code = error_code(buf, off, msglen)
        if code:
            raise NetlinkError(code, "the kernel refused the conntrack dump")
    elif mflags & NLM_F_DUMP_INTR:  # netlink_dump() sets the flag on the final message too (nl_dump_check_consistent)
        result.interrupted = True
    return True


def count_dump_messages(buf: t.Any, size: int, seq: int, counts: dict[int, int], result: DumpResult,
                        decode_entry: t.Callable[[t.Any, int, int], dict[str, t.Any]] | None, max_entries: int) -> bool:
    """Count the entries of one received buffer of a conntrack dump into ``counts`` (packed keys) and ``result``.

    Returns True once the dump is over; messages of another sequence number are skipped. The first
    ``max_entries`` entries are decoded when ``decode_entry`` is given.
    """
    # Local names: the loop below runs for every entry of the dump.
    unpack_head, unpack_orig, unpack_proto, unpack_attr = _NLMSGHDR.unpack_from, _ORIG_HEAD.unpack_from, _PROTO_HEAD.unpack_from, _NLATTR.unpack_from
    expected_type = _CT_NEW_TYPE
    listed = result.listed
    off = 0
    try:
        while off + NLMSG_HDRLEN <= size:
            msglen, mtype, mflags, mseq, _pid = unpack_head(buf, off)
            if msglen < NLMSG_HDRLEN or off + msglen > size:
                raise NetlinkError(errno.EPROTO, "truncated netlink message in the dump")
            if mseq == seq and mtype == expected_type:
                # Inlined fast path of ct_count_key() (the hot loop of a million-entry dump):
                # CTA_TUPLE_ORIG { CTA_TUPLE_IP {...}, CTA_TUPLE_PROTO { CTA_PROTO_NUM, ... } }.
                key = -1
                a = off + PAYLOAD_OFFSET
                if msglen >= 64:
                    alen, atype, iplen, iptype = unpack_orig(buf, a)
                    if atype & NLA_TYPE_MASK == 1 and iptype & NLA_TYPE_MASK == 1:
                        p = a + 4 + ((iplen + 3) & ~3)
                        if p + 9 <= a + alen:
                            _plen, ptype, nlen, ntype, proto = unpack_proto(buf, p)
                            if ptype & NLA_TYPE_MASK == 2 and ntype == 1 and nlen == 5:
                                if proto != 6:
                                    key = (buf[off + 16] << 24) | (proto << 8) | 0xFF
                                else:
                                    # TCP: walk the top-level attributes after the tuple to
                                    # CTA_PROTOINFO { CTA_PROTOINFO_TCP { CTA_PROTOINFO_TCP_STATE } }.
                                    end = off + msglen
                                    q = a + ((alen + 3) & ~3)
                                    while q + 13 <= end:
                                        qlen, qtype = unpack_attr(buf, q)
                                        if qlen < 4:
                                            break
                                        if qtype & NLA_TYPE_MASK == 4:
                                            _tlen, ttype, slen, stype = unpack_orig(buf, q + 4)
                                            if ttype & NLA_TYPE_MASK == 1 and stype == 1 and slen == 5:
                                                key = (buf[off + 16] << 24) | 0x600 | buf[q + 12]
                                            break
                                        q += (qlen + 3) & ~3
                if key < 0:
                    key = pack_count_key(*ct_count_key(buf, off, msglen))
                counts[key] = counts.get(key, 0) + 1
                if decode_entry is not None and listed < max_entries:
                    result.entries.append(decode_entry(buf, off, msglen))
                listed += 1
                if mflags & NLM_F_DUMP_INTR:
                    result.interrupted = True
            elif mseq == seq and mtype in (NLMSG_DONE, NLMSG_ERROR):
                return _dump_ended(buf, off, msglen, mtype, mflags, result)
            off += (msglen + 3) & ~3
    finally:
        result.listed = listed
    return False


class CtnetlinkSocket:
    """A NETLINK_NETFILTER socket for dump requests. Use as a context manager."""

    def __init__(self, rcvbuf: int = RCVBUF_BYTES) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as exc:
            raise NetlinkError(exc.errno or errno.EPROTONOSUPPORT, "cannot open a NETLINK_NETFILTER socket") from exc
        for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, option, rcvbuf)
                break
            except OSError:
                continue
        self.sock.bind((0, 0))
        self.seq = int.from_bytes(os.urandom(2), "big") or 1
        self.buf = bytearray(RECV_CHUNK)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> CtnetlinkSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, subsys: int, msg: int, family: int) -> int:
        self.seq += 1
        self.sock.send(build_request(subsys, msg, family=family, seq=self.seq))
        return self.seq

    def _recv(self) -> int:
        try:
            size = self.sock.recv_into(self.buf, len(self.buf))
        except OSError as exc:
            raise NetlinkError(exc.errno or errno.EIO, "receiving from the netlink socket failed") from exc
        return size

    def dump_conntrack(
        self,
        msg: int = IPCTNL_MSG_CT_GET,
        family: int = 0,
        max_entries: int = 0,
        decode_entry: t.Callable[[t.Any, int, int], dict[str, t.Any]] | None = None,
    ) -> DumpResult:
        """Stream a conntrack list dump (table, dying or unconfirmed), counting as it goes.

        ``family`` 0 dumps every family; otherwise the kernel filters on it. The first
        ``max_entries`` entries are decoded with ``decode_entry`` when one is given.
        """
        result = DumpResult()
        counts: dict[int, int] = {}
        decode = decode_entry if max_entries > 0 else None
        seq = self._send(NFNL_SUBSYS_CTNETLINK, msg, family)
        try:
            while not count_dump_messages(self.buf, self._recv(), seq, counts, result, decode, max_entries):
                pass
        finally:
            result.counts = unpack_count_keys(counts)
        return result

    def dump_messages(self, subsys: int, msg: int, family: int = 0) -> t.Iterator[tuple[int, bytes]]:
        """Yield ``(type, message bytes)`` for every message of a (small) dump, such as stats or expectations."""
        seq = self._send(subsys, msg, family)
        while True:
            size = self._recv()
            for mtype, _flags, off, msglen in iter_messages(self.buf, size, seq):
                if mtype == NLMSG_DONE:
                    return
                yield mtype, bytes(self.buf[off:off + msglen])

    def stats_cpu(self) -> list[dict[str, int]]:
        """Per-CPU conntrack counters, as ``conntrack -S`` shows them, each with its ``cpu`` number."""
        rows = []
        for _mtype, data in self.dump_messages(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU):
            cpu, counters = decode_stats_cpu(data, 0, len(data))
            row = {"cpu": cpu}
            row.update(counters)
            rows.append(row)
        return rows

    def count_expectations(self, family: int = 0) -> dict[int, int]:
        """Number of expectations per layer-3 family."""
        by_family: dict[int, int] = {}
        for _mtype, data in self.dump_messages(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET, family):
            fam = message_family(data, 0)
            by_family[fam] = by_family.get(fam, 0) + 1
        return by_family


def sum_stats(rows: t.Iterable[dict[str, int]]) -> dict[str, int]:
    """Add the per-CPU counters up (every counter seen on any CPU, the ``cpu`` key excluded)."""
    total: dict[str, int] = {}
    for row in rows:
        for name, value in row.items():
            if name != "cpu":
                total[name] = total.get(name, 0) + value
    return total


__all__ = (
    "NETLINK_NETFILTER",
    "NFNL_SUBSYS_CTNETLINK",
    "NFNL_SUBSYS_CTNETLINK_EXP",
    "IPCTNL_MSG_CT_GET",
    "IPCTNL_MSG_CT_GET_STATS_CPU",
    "IPCTNL_MSG_CT_GET_DYING",
    "IPCTNL_MSG_CT_GET_UNCONFIRMED",
    "IPCTNL_MSG_EXP_GET",
    "CTA_STATS_NAMES",
    "TCP_STATE_NAMES",
    "STATUS_BITS",
    "NetlinkError",
    "align4",
    "msg_type",
    "build_request",
    "iter_attrs",
    "find_attr",
    "error_code",
    "message_family",
    "message_res_id",
    "ct_count_key",
    "decode_tuple",
    "decode_ct_entry",
    "decode_stats_cpu",
    "status_flags",
    "tcp_state_name",
    "stats_attr_name",
    "iter_messages",
    "pack_count_key",
    "unpack_count_keys",
    "DumpResult",
    "summarize_counts",
    "count_dump_messages",
    "CtnetlinkSocket",
    "sum_stats",
)
