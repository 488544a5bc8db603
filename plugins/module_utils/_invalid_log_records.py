# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One conntrack kernel log message as a record, and the namespace a record's interface belongs to; pure.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Nothing raises on odd input: a message that looks like conntrack's but cannot be understood is a record
with ``ok: False``. The message format is described in ``_invalid_log``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import typing as t
from collections import Counter

from ansible_collections.netfilter.conntrack.plugins.module_utils._names import protocol_name

TCP_FLAGS = ("CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN")
_TCP_FLAG_SET = frozenset(TCP_FLAGS)
# Old per-protocol prefixes (nf_ct_tcp: ...) mapped to the protocol they log for.
_LEGACY_PREFIX_PROTOCOLS = {
    "tcp": "tcp",
    "udp": "udp",
    "udplite": "udplite",
    "icmp": "icmp",
    "icmpv6": "icmpv6",
    "sctp": "sctp",
    "dccp": "dccp",
    "gre": "gre",
}

# --- the message itself ---------------------------------------------------------------------------
_PREFIX_RE = re.compile(r"^(?P<prefix>nf_ct_(?:proto_(?P<num>\d+)|(?P<name>[a-z0-9]+))):\s?(?P<rest>.*)$")
# The packet dump starts with IN= (nf_log_syslog always prints IN= OUT=); trimmed copies start at SRC=.
_DUMP_START_RE = re.compile(r"(?:^|\s)(?=(?:IN|SRC|MAC|PHYSIN)=)")
_STATE_RE = re.compile(r"\bstate ([A-Z][A-Z_0-9]+)\b")
# Numbers that vary per packet: sequence/ack bounds ("upper bound 147360949") and any long number.
_BOUND_NUMBER_RE = re.compile(r"\b(bound) \d+\b")
_LONG_NUMBER_RE = re.compile(r"\b\d{5,}\b")
_DIGIT_RE = re.compile(r"\d")

# --- table-full and related messages (printed even with nf_conntrack_log_invalid=0) ----------------
# net/netfilter/nf_conntrack_core.c, __nf_conntrack_alloc(), all through net_warn_ratelimited(), so at most
# net.core.message_burst lines per net.core.message_cost seconds reach the log, and the kernel prints
# "net_ratelimit: N callbacks suppressed" for the rest (shared with every other net_ratelimit() user):
#   up to 6.16:  "nf_conntrack: table full, dropping packet"
#   6.17 and later: the same in the initial namespace, and
#                "nf_conntrack: table full in netns %u, dropping packet" (net->ns.inum) in any other one.
# net/netfilter/nf_conntrack_expect.c, __nf_ct_expect_check(): "nf_conntrack: expectation table full".
# Distribution kernels that define pr_fmt in these files print the prefix twice ("nf_conntrack: nf_conntrack:
# table full, dropping packet"); 2.6 kernels printed "ip_conntrack: table full, dropping packet." with a period.
_TABLE_FULL_RE = re.compile(
    r"^(?:nf_conntrack: )?(?:nf|ip)_conntrack: table full(?: in netns (?P<inum>\d+))?, dropping packet\.?\s*$")
_EXPECT_FULL_RE = re.compile(r"^(?:nf_conntrack: )?nf_conntrack: expectation table full\s*$")
_RATELIMIT_RE = re.compile(r"^net_ratelimit: (?P<count>\d+) callbacks suppressed\s*$")
MAX_INTERFACES = 20


def parse_kernel_event(message: str) -> dict[str, t.Any] | None:
    """Classify a table-full, expectation-table-full or net_ratelimit message; None for anything else.

    Returns ``{"kind": "table_full", "netns_inum": 4026532290 or None}``, ``{"kind": "expect_full"}`` or
    ``{"kind": "ratelimit", "suppressed": N}``.
    """
    text = message.strip()
    if text.startswith(("nf_conntrack: ", "ip_conntrack: ")):
        match = _TABLE_FULL_RE.match(text)
        if match:
            inum = match.group("inum")
            return {"kind": "table_full", "netns_inum": int(inum) if inum else None}
        if _EXPECT_FULL_RE.match(text):
            return {"kind": "expect_full"}
        return None
    if text.startswith("net_ratelimit: "):
        match = _RATELIMIT_RE.match(text)
        if match:
            return {"kind": "ratelimit", "suppressed": int(match.group("count"))}
    return None


def _mac_octets(mac: str | None) -> tuple[str, str]:
    """(destination, source) MAC of nf_log_syslog's ``MAC=`` field (dst:src:ethertype), lower case; '' when absent."""
    if not mac:
        return "", ""
    octets = mac.lower().split(":")
    if len(octets) < 12:
        return "", ""
    return ":".join(octets[:6]), ":".join(octets[6:12])


class Attribution:
    """Map a record's IN=/OUT= interface to the selected namespace that owns it, by name, then MAC and ifindex.

    ``owners`` is ``{namespace label: [{"name": "veth0", "ifindex": 5, "mac": "aa:..."}...]}``. The kernel log is
    global and says nothing about the namespace of an invalid-packet line, so the interface is the only clue: a
    name owned by one selected namespace decides; a name several own (eth0 in every container) is decided by the
    MAC address of the dump (the destination MAC is the receiving interface's on IN=, the source MAC the sending
    one's); otherwise the line is reported as ambiguous.
    """

    def __init__(self, owners: dict[str, list[dict[str, t.Any]]] | None) -> None:
        self.by_name: dict[str, list[tuple[str, dict[str, t.Any]]]] = {}
        for label, interfaces in (owners or {}).items():
            for interface in interfaces or []:
                if isinstance(interface, dict) and interface.get("name"):
                    self.by_name.setdefault(str(interface["name"]), []).append((label, interface))
        self.labels = list((owners or {}).keys())
        self.counts: dict[str, Counter[str]] = {label: Counter() for label in self.labels}
        self.unattributed: Counter[str] = Counter()

    @property
    def enabled(self) -> bool:
        return bool(self.labels)

    def attribute(self, record: dict[str, t.Any], mac: str | None) -> str | None:
        """The namespace label of a record, or None (counted under a reason in unattributed)."""
        name = record.get("in") or record.get("out")
        if not name:
            self.unattributed["line has empty IN= and OUT= (the kernel did not pass the interface, as on 5.10)"] += 1
            return None
        candidates = self.by_name.get(name) or []
        if len(candidates) > 1:
            dst, src = _mac_octets(mac)
            wanted = dst if record.get("in") else src
            narrowed = [pair for pair in candidates if wanted and str(pair[1].get("mac") or "").lower() == wanted]
            if len(narrowed) == 1:
                candidates = narrowed
            else:
                self.unattributed[f"interface {name} is owned by several selected namespaces"
                                  f" ({', '.join(sorted(label for label, dummy in candidates))}) and the MAC does not decide"] += 1
                return None
        if not candidates:
            key = f"interface {name} is owned by no selected namespace"
            if key in self.unattributed or len(self.unattributed) < MAX_INTERFACES:
                self.unattributed[key] += 1
            else:
                self.unattributed["other interfaces owned by no selected namespace"] += 1
            return None
        label, interface = candidates[0]
        key = f"{interface['name']} (ifindex {interface.get('ifindex')})"
        self.counts[label][key] += 1
        return label

    def finish(self) -> dict[str, t.Any]:
        return {
            "by_namespace": {label: {"count": sum(counter.values()), "by_interface": dict(counter.most_common(MAX_INTERFACES))}
                             for label, counter in self.counts.items()},
            "unattributed": {"count": sum(self.unattributed.values()), "reasons": dict(self.unattributed.most_common())},
        }


def normalise_reason(reason: str) -> str:
    """Replace per-packet numbers so that equal causes count together.

    ``ACK is over upper bound 147360949 (ACKed data not seen yet)`` becomes
    ``ACK is over upper bound N (ACKed data not seen yet)``. Small enumerations such as
    ``packet (index 1) in dir 0`` are kept: they name the packet type and direction.
    """
    if "  " in reason or "\t" in reason:
        reason = " ".join(reason.split())
    if not _DIGIT_RE.search(reason):
        return reason
    reason = _BOUND_NUMBER_RE.sub(r"\1 N", reason)
    return _LONG_NUMBER_RE.sub("N", reason)


@functools.lru_cache(maxsize=4096)
def _normalise_address(value: str) -> str:
    """IPv6 in compressed form (the kernel prints every group in full); IPv4 is already canonical."""
    if ":" not in value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _as_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 0) if value.startswith("0x") else int(value)
    except ValueError:
        return None


_FIELDS = frozenset(("IN", "OUT", "SRC", "DST", "LEN", "MAC", "PROTO", "SPT", "DPT", "TYPE", "CODE"))


def parse_packet_dump(dump: str) -> dict[str, t.Any]:
    """Parse an nf_log_syslog packet dump (``IN=.. OUT=.. SRC=.. ... PROTO=TCP SPT=.. DPT=.. SYN``).

    The first occurrence of a field wins, so the IP header's ``LEN=`` is kept and UDP's later
    ``LEN=`` ignored. An ICMP error's quoted inner packet (``[SRC=... ]``) is cut off so that it
    cannot override the outer addresses. Unknown fields are ignored.
    """
    tokens = dump.split("[", 1)[0].split()
    fields: dict[str, str] = {}
    words = _TCP_FLAG_SET.intersection(tokens)  # IP-level words (DF, MF, CE) are not in the set
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key in _FIELDS and key not in fields:
            fields[key] = value
    src = fields.get("SRC")
    dst = fields.get("DST")
    record: dict[str, t.Any] = {
        "in": fields.get("IN") or None,
        "out": fields.get("OUT") or None,
        "src": _normalise_address(src) if src is not None else None,
        "dst": _normalise_address(dst) if dst is not None else None,
        "length": _as_int(fields.get("LEN")),
    }
    address = src or dst
    record["family"] = None if address is None else ("ipv6" if ":" in address else "ipv4")
    proto = fields.get("PROTO")
    record["dump_protocol"] = proto.lower() if proto else None
    record["sport"] = _as_int(fields.get("SPT"))
    record["dport"] = _as_int(fields.get("DPT"))
    if "TYPE" in fields:
        record["icmp_type"] = _as_int(fields["TYPE"])
        record["icmp_code"] = _as_int(fields.get("CODE"))
    if words or proto == "TCP":  # only TCP dumps carry these words
        record["flags"] = [flag for flag in TCP_FLAGS if flag in words]
    return record


@functools.lru_cache(maxsize=512)
def _protocol_from_number(number: int) -> str:
    return protocol_name(number)


_MAC_RE = re.compile(r"\bMAC=([0-9a-fA-F:]*)")


def mac_field(message: str) -> str | None:
    match = _MAC_RE.search(message)
    return match.group(1) if match else None


def is_dump_continuation(message: str) -> bool:
    """Whether a message is a packet dump alone: the second line of the older format that printed the reason first."""
    return bool(_DUMP_START_RE.match(message)) and not _PREFIX_RE.match(message)


def has_packet_dump(text: str) -> bool:
    return _DUMP_START_RE.search(text) is not None


def parse_message(message: str) -> dict[str, t.Any] | None:
    """Parse one kernel log message (reader prefixes already removed).

    Returns None when the message is not a conntrack ``nf_ct_*`` message at all, a record with
    ``ok: False`` when it is one but cannot be understood (for example a dynamic-debug line
    without a packet dump), and a full record otherwise.
    """
    match = _PREFIX_RE.match(message.strip())
    if not match:
        return None
    rest = match.group("rest")
    position = rest.find(" IN=")  # fast path: nf_log_syslog always starts the dump with IN=
    split = _DUMP_START_RE.search(rest, position) if position >= 0 else _DUMP_START_RE.search(rest)
    if split is None:
        return {"ok": False, "prefix": match.group("prefix"), "reason_text": rest.strip()}
    reason_text = rest[: split.start()].strip()
    dump = parse_packet_dump(rest[split.start() :])
    if not reason_text or (dump["src"] is None and dump["dump_protocol"] is None):
        return {"ok": False, "prefix": match.group("prefix"), "reason_text": reason_text}

    if match.group("num") is not None:
        protocol = _protocol_from_number(int(match.group("num")))
    else:
        protocol = _LEGACY_PREFIX_PROTOCOLS.get(match.group("name"), match.group("name"))
    dump_protocol = dump.pop("dump_protocol")
    if protocol in ("all", "none") or protocol.isdigit():
        protocol = dump_protocol or protocol
    state = _STATE_RE.search(reason_text) if "state " in reason_text else None
    record: dict[str, t.Any] = {
        "ok": True,
        "prefix": match.group("prefix"),
        "protocol": protocol,
        "reason": normalise_reason(reason_text),
        "reason_text": reason_text,
        "state": state.group(1) if state else None,
    }
    record.update(dump)
    return record


__all__ = (
    "MAX_INTERFACES",
    "TCP_FLAGS",
    "Attribution",
    "has_packet_dump",
    "is_dump_continuation",
    "mac_field",
    "normalise_reason",
    "parse_kernel_event",
    "parse_message",
    "parse_packet_dump",
)
