# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse conntrack invalid-packet kernel log lines and summarise them.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Everything here is pure: the functions take lines (or journal JSON objects) and return plain
dictionaries, so they run the same on recorded fixtures and on a live host. Nothing raises on
odd input; a line that looks like conntrack's but cannot be understood is counted as unparsed.

A logged invalid packet is one kernel log message::

    nf_ct_proto_6: invalid tcp flag combination IN=vs OUT= MAC=... SRC=10.99.0.1 DST=10.99.0.2 LEN=40 ...
    ^ prefix        ^ reason                     ^ nf_log_syslog packet dump

The prefix is ``nf_ct_proto_<IPPROTO>: `` since about 4.14 and ``nf_ct_<name>: `` (``nf_ct_tcp``,
``nf_ct_udp``, ``nf_ct_icmp``, ``nf_ct_icmpv6``...) before. The message reaches us wrapped by the
reader: ``[  304.507921] `` (dmesg), ``6,1234,304507921,-;`` (/dev/kmsg),
``2026-11-27T03:47:58+0000 host kernel: `` (journalctl -k short-iso) or a JSON object
(journalctl -o json, which carries ``_SOURCE_MONOTONIC_TIMESTAMP``).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import re
import typing as t
from collections import Counter

from ansible_collections.netfilter.conntrack.plugins.module_utils._names import protocol_name

DEFAULT_MAX_SAMPLES = 10
DEFAULT_TOP_PEERS = 10
# Bounds that keep the summary small whatever the input: distinct reasons are a short kernel-defined
# list once numbers are normalised, but garbage must not be able to grow the payload.
MAX_REASONS = 50
MAX_UNPARSED_SAMPLES = 3
MAX_RAW_CHARS = 300
OTHER = "(other)"

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

# --- reader wrappers -----------------------------------------------------------------------------
# [  304.507921] message
_DMESG_RE = re.compile(r"^\[\s*(?P<mono>\d+\.\d+)\]\s?(?P<msg>.*)$")
# 6,1234,304507921,-;message  (optionally ",caller=T12" and further fields before ';')
_KMSG_RE = re.compile(r"^(?P<prio>\d+),(?P<seq>\d+),(?P<usec>\d+),[^;]*;(?P<msg>.*)$")
# 2026-11-27T03:47:58+0000 host kernel: message  /  2026-11-27T03:47:58.123456+00:00 host kernel: message
_ISO_SYSLOG_RE = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+\S+\s+kernel:\s?(?P<msg>.*)$")
# Nov 27 03:47:58 host kernel: message (journalctl -o short, classic syslog files; no year, no zone)
_SHORT_SYSLOG_RE = re.compile(r"^[A-Z][a-z]{2}\s+\d{1,2}\s+\d\d:\d\d:\d\d\s+\S+\s+kernel:\s?(?P<msg>.*)$")
# [  304.507921] host kernel: message (journalctl -o short-monotonic)
_MONO_SYSLOG_RE = re.compile(r"^\[\s*(?P<mono>\d+\.\d+)\]\s+\S+\s+kernel:\s?(?P<msg>.*)$")

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
KERNEL_FACILITY = 0


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


# journald logs this (as itself, not as a kernel message) when it finds a gap in the /dev/kmsg sequence
# numbers: the kernel ring buffer wrapped before journald read the records (SD_MESSAGE_JOURNAL_MISSED).
JOURNAL_MISSED_MESSAGE_ID = "e9bf28e6e834481bb6f48f548ad13606"
_MISSED_RE = re.compile(r"\bMissed (\d+) kernel messages?\b")


class Since(t.NamedTuple):
    """Where reading starts: records strictly after ``monotonic`` or at/after ``realtime``.

    ``monotonic`` is in seconds on the kernel log clock (the dmesg ``[ ... ]`` value);
    ``realtime`` is epoch seconds. Either or both may be None; both None means "the whole log".
    """

    monotonic: float | None = None
    realtime: float | None = None


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


def _mac_field(message: str) -> str | None:
    match = _MAC_RE.search(message)
    return match.group(1) if match else None


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


def _parse_iso(value: str) -> float | None:
    """Epoch seconds from an ISO-8601 timestamp; a missing zone means UTC."""
    match = re.match(
        r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?\s*(Z|UTC|[+-]\d\d:?\d\d)?$", value.strip()
    )
    if not match:
        return None
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    fraction = float("0." + match.group(7)) if match.group(7) else 0.0
    zone = match.group(8)
    offset = 0
    if zone and zone not in ("Z", "UTC"):
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 60 + int(digits[2:])) * 60
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return moment.timestamp() + fraction - offset


def parse_since(value: t.Any, now: float | None = None) -> float | None:
    """Epoch seconds for an ISO-8601 timestamp, ``now``, ``@<epoch>`` or a bare epoch number.

    Returns None for ``boot`` (or an empty value) and raises ValueError for anything else.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text in ("", "boot"):
        return None
    if text == "now":
        if now is None:
            raise ValueError("since=now needs the current time")
        return now
    number = text[1:] if text.startswith("@") else text
    try:
        return float(number)
    except ValueError:
        pass
    parsed = _parse_iso(text)
    if parsed is None:
        raise ValueError(
            f"since={value!r} is not 'boot', 'now', an ISO-8601 timestamp (2026-11-27T03:47:58Z) or epoch seconds"
        )
    return parsed


def iso_utc(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def split_line(line: str) -> tuple[str, float | None, float | None]:
    """Remove the reader's wrapper from a text line: ``(message, monotonic, realtime)``.

    Understands dmesg, /dev/kmsg records, journalctl ``short-iso``/``short-iso-precise``/``short``/
    ``short-monotonic`` output and rsyslog kernel files; other lines are returned unchanged.
    """
    line = line.rstrip("\r\n")
    match = _DMESG_RE.match(line)
    if match:
        mono_match = _MONO_SYSLOG_RE.match(line)
        if mono_match:
            return mono_match.group("msg"), float(mono_match.group("mono")), None
        return match.group("msg"), float(match.group("mono")), None
    match = _KMSG_RE.match(line)
    if match:
        return match.group("msg"), int(match.group("usec")) / 1e6, None
    match = _ISO_SYSLOG_RE.match(line)
    if match:
        realtime = _parse_iso(match.group("ts"))
        message, monotonic, dummy = split_line(match.group("msg"))  # rsyslog keeps the kernel's [ ts ]
        return message, monotonic, realtime
    match = _SHORT_SYSLOG_RE.match(line)
    if match:
        message, monotonic, dummy = split_line(match.group("msg"))
        return message, monotonic, None
    return line, None, None


def split_journal_entry(entry: t.Any) -> tuple[str, float | None, float | None]:
    """``(message, monotonic, realtime)`` from one ``journalctl -o json`` object."""
    if not isinstance(entry, dict):
        return "", None, None
    message = entry.get("MESSAGE")
    if isinstance(message, list):  # journald stores non-UTF-8 messages as a byte array
        try:
            message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
        except (TypeError, ValueError):
            message = ""
    if not isinstance(message, str):
        message = ""

    def usec(key: str) -> float | None:
        value = entry.get(key)
        try:
            return int(value) / 1e6 if value is not None else None
        except (TypeError, ValueError):
            return None

    monotonic = usec("_SOURCE_MONOTONIC_TIMESTAMP")
    if monotonic is None and entry.get("_TRANSPORT") == "kernel":
        monotonic = usec("__MONOTONIC_TIMESTAMP")
    return message, monotonic, usec("__REALTIME_TIMESTAMP")


def kmsg_sequence(line: str) -> int | None:
    """The sequence number of a ``/dev/kmsg`` record (``6,1234,304507921,-;...`` gives 1234), else None."""
    if not line[:1].isdigit():
        return None
    match = _KMSG_RE.match(line)
    return int(match.group("seq")) if match else None


def kmsg_facility(line: str) -> int | None:
    """The syslog facility of a ``/dev/kmsg`` record (its priority shifted right by 3: 0 is the kernel), else None.

    A program may write to /dev/kmsg, but the kernel gives its records facility 1 (user) unless the program asks
    for another one, never 0: facility 0 is what tells a kernel record from a forged one."""
    if not line[:1].isdigit():
        return None
    match = _KMSG_RE.match(line)
    return int(match.group("prio")) >> 3 if match else None


def journal_entry_from_kernel(entry: dict[str, t.Any]) -> bool:
    """Whether a ``journalctl -o json`` entry may be a kernel record: from ``_TRANSPORT=kernel`` with
    ``SYSLOG_FACILITY=0``. journald marks every record it reads from /dev/kmsg as kernel transport, including
    those programs wrote there, so the facility decides; an entry that carries neither field cannot be told."""
    transport = entry.get("_TRANSPORT")
    if transport is not None and transport != "kernel":
        return False
    facility = entry.get("SYSLOG_FACILITY")
    return facility is None or str(facility) == str(KERNEL_FACILITY)


def journal_missed(entry: t.Any) -> int | None:
    """The number in journald's "Missed N kernel messages" entry (``journalctl -o json``), else None."""
    if not isinstance(entry, dict):
        return None
    message = entry.get("MESSAGE")
    if not isinstance(message, str):
        return None
    match = _MISSED_RE.search(message)
    if match is None:
        return None
    message_id = entry.get("MESSAGE_ID")
    if message_id is not None and str(message_id).replace("-", "").lower() != JOURNAL_MISSED_MESSAGE_ID:
        return None
    return int(match.group(1))


def iter_text_lines(stream: t.Iterable[bytes]) -> t.Iterator[str]:
    """Decode a binary line stream (a pipe's file object) line by line, as UTF-8 with replacement."""
    for raw in stream:
        yield raw.decode("utf-8", "replace")


def _journal_object(line: str) -> dict[str, t.Any] | None:
    """The ``journalctl -o json`` object on a line, else None."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return None
    try:
        entry = json.loads(stripped)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def split_any(line: str) -> tuple[str, float | None, float | None]:
    """Like split_line, but also accepts a line that is a ``journalctl -o json`` object."""
    entry = _journal_object(line)
    return split_line(line) if entry is None else split_journal_entry(entry)


class Summary:
    """Accumulates records into the compact facts dictionary; memory grows only with distinct peers."""

    def __init__(
        self,
        since: Since | None = None,
        boot_epoch: float | None = None,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        top_peers: int = DEFAULT_TOP_PEERS,
        interfaces: dict[str, list[dict[str, t.Any]]] | None = None,
    ) -> None:
        self.since = since or Since()
        self.attribution = Attribution(interfaces)
        self.events: dict[str, dict[str, t.Any]] = {
            "table_full": self._new_event(), "expect_full": self._new_event(), "ratelimit": self._new_event()}
        self.table_full_netns: Counter[str] = Counter()
        self.boot_epoch = boot_epoch
        self.max_samples = max(0, max_samples)
        self.top_peers = max(0, top_peers)
        self.total = 0
        self.by_reason: Counter[str] = Counter()
        self.by_protocol: Counter[str] = Counter()
        self.by_family: Counter[str] = Counter()
        self.peers: Counter[str] = Counter()
        self.samples: list[dict[str, t.Any]] = []
        self.unparsed = 0
        self.unparsed_samples: list[str] = []
        self.forged = 0
        self.lines_read = 0
        self.first_monotonic: float | None = None
        self.last_monotonic: float | None = None
        self.watermark: float | None = None
        self._pending: dict[str, t.Any] | None = None
        # Loss detection: None while the reader cannot tell (dmesg, a file without /dev/kmsg records).
        self.lost_records: int | None = None
        self.lost_upper_bound = False
        self.overruns = 0
        self.missed_reports = 0
        self.first_sequence: int | None = None
        self._last_sequence: int | None = None
        self._last_in_window = False

    def _in_window(self, monotonic: float | None, realtime: float | None) -> bool:
        since = self.since
        if since.monotonic is None and since.realtime is None:
            return True
        if monotonic is not None:
            if since.monotonic is not None:
                return monotonic > since.monotonic
            if self.boot_epoch is not None:
                return self.boot_epoch + monotonic >= since.realtime  # type: ignore[operator]
        if realtime is not None:
            if since.realtime is not None:
                return realtime >= since.realtime
            if self.boot_epoch is not None:
                return realtime - self.boot_epoch > since.monotonic  # type: ignore[operator]
        return True  # no usable timestamp: keep rather than silently lose it

    def add(self, message: str, monotonic: float | None = None, realtime: float | None = None, raw: str | None = None) -> None:
        """Feed one kernel log message with the timestamps its reader gave it."""
        self.lines_read += 1
        if monotonic is not None and (self.watermark is None or monotonic > self.watermark):
            self.watermark = monotonic
        if not self._in_window(monotonic, realtime):
            return
        if self._pending is not None:
            # An older format printed the reason on one line and the packet dump on the next.
            pending, self._pending = self._pending, None
            if _DUMP_START_RE.match(message.strip()) and not _PREFIX_RE.match(message.strip()):
                self.add(f"{pending['prefix']}: {pending['reason_text']} {message.strip()}", pending["monotonic"], pending["realtime"], pending["raw"])
                self.lines_read -= 1
                return
            self._add_unparsed(pending["raw"])
        try:
            record = parse_message(message)
        except Exception:  # pragma: no cover - defensive: a log line must never fail the module
            record = {"ok": False, "prefix": "", "reason_text": ""} if "nf_ct_" in message else None
        if record is None:
            event = parse_kernel_event(message)
            if event is not None:
                self._add_event(event, monotonic, realtime)
            return
        if not record.pop("ok"):
            if record["reason_text"] and not _DUMP_START_RE.search(record["reason_text"]):
                self._pending = {
                    "prefix": record["prefix"],
                    "reason_text": record["reason_text"],
                    "monotonic": monotonic,
                    "realtime": realtime,
                    "raw": raw if raw is not None else message,
                }
                return
            self._add_unparsed(raw if raw is not None else message)
            return
        record["monotonic"] = monotonic
        if realtime is None and self.boot_epoch is not None and monotonic is not None:
            realtime = self.boot_epoch + monotonic
        record["timestamp"] = iso_utc(realtime)
        if self.attribution.enabled:
            label = self.attribution.attribute(record, _mac_field(message))
            record["netns"] = label
        self._add_record(record)

    @staticmethod
    def _new_event() -> dict[str, t.Any]:
        return {"count": 0, "first_monotonic": None, "last_monotonic": None, "first": None, "last": None}

    def _add_event(self, event: dict[str, t.Any], monotonic: float | None, realtime: float | None) -> None:
        entry = self.events[event["kind"]]
        entry["count"] += event.get("suppressed", 1) if event["kind"] == "ratelimit" else 1
        if realtime is None and self.boot_epoch is not None and monotonic is not None:
            realtime = self.boot_epoch + monotonic
        if entry["first_monotonic"] is None and entry["first"] is None:
            entry["first_monotonic"], entry["first"] = monotonic, iso_utc(realtime)
        entry["last_monotonic"], entry["last"] = monotonic, iso_utc(realtime)
        if event["kind"] == "table_full":
            inum = event.get("netns_inum")
            self.table_full_netns["initial (or a kernel before 6.17)" if inum is None else str(inum)] += 1

    def kernel_events(self) -> dict[str, t.Any]:
        """Table-full, expectation-table-full and net_ratelimit events of the window."""
        table_full = dict(self.events["table_full"], by_netns=dict(self.table_full_netns.most_common(MAX_INTERFACES)))
        suppressed = dict(self.events["ratelimit"])
        suppressed["note"] = (
            "net_ratelimit() messages the kernel suppressed (table full, expectation table full and every other"
            " net_ratelimit user share the budget of net.core.message_burst lines per net.core.message_cost seconds):"
            " the table-full line count is a lower bound when this is non-zero; the drop counter is exact")
        return {"table_full": table_full, "expect_full": self.events["expect_full"], "ratelimit_suppressed": suppressed}

    def loss_checked(self) -> None:
        """Say that the reader can detect lost records, so that none found means none lost (0, not null)."""
        if self.lost_records is None:
            self.lost_records = 0

    def _lose(self, count: int, upper_bound: bool) -> None:
        self.lost_records = (self.lost_records or 0) + count
        self.lost_upper_bound = self.lost_upper_bound or upper_bound

    def note_sequence(self, sequence: int, monotonic: float | None, realtime: float | None) -> None:
        """Feed the sequence number of a /dev/kmsg record; gaps are records the ring buffer overwrote.

        The kernel numbers records from 0 at boot, so a first record numbered N means N records were
        overwritten before the read began. They are all older than that record: they belong to the
        window when the window is the whole boot, may belong to it (an upper bound) when the oldest
        record read is already inside a later window, and do not when it is before the window. A gap
        between two records read counts when the record after it is inside the window.
        """
        self.loss_checked()
        in_window = self._in_window(monotonic, realtime)
        last = self._last_sequence
        if last is None or sequence <= last:  # first record, or a new boot in a file
            if last is None:
                self.first_sequence = sequence
            if sequence > 0 and in_window:
                everything = self.since.monotonic is None and self.since.realtime is None
                self._lose(sequence, not everything)
        elif sequence > last + 1 and in_window:
            self._lose(sequence - last - 1, not self._last_in_window)
        self._last_sequence = sequence
        self._last_in_window = in_window

    def note_overrun(self) -> None:
        """The reader was told (EPIPE from /dev/kmsg) that records were overwritten while it read."""
        self.loss_checked()
        self.overruns += 1

    def note_missed(self, count: int, monotonic: float | None = None, realtime: float | None = None) -> None:
        """journald reported ``count`` kernel records it never saw (ring buffer overwritten before it read)."""
        self.loss_checked()
        if count > 0 and self._in_window(monotonic, realtime):
            self.missed_reports += 1
            self._lose(count, False)

    def feed_missed_entries(self, entries: t.Iterable[t.Any]) -> Summary:
        """Feed the ``journalctl -o json`` entries of journald's "Missed N kernel messages" reports."""
        self.loss_checked()
        for entry in entries:
            count = journal_missed(entry)
            if count:
                dummy, monotonic, realtime = split_journal_entry(entry)
                if monotonic is None:
                    try:
                        monotonic = int(entry.get("__MONOTONIC_TIMESTAMP")) / 1e6
                    except (TypeError, ValueError):
                        monotonic = None
                self.note_missed(count, monotonic, realtime)
        return self

    def loss_diagnosis(self) -> str | None:
        """A plain-language warning when records of the window were lost, else None."""
        if not self.lost_records and not self.overruns:
            return None
        lost = self.lost_records or 0
        amount = f"up to {lost}" if self.lost_upper_bound else str(lost)
        if self.missed_reports:
            text = (
                f"The kernel ring buffer wrapped: journald reported {lost} kernel log records of this window lost"
                " (\"Missed N kernel messages\") because the kernel overwrote them before journald read them."
            )
        else:
            text = (
                f"The kernel ring buffer wrapped: {amount} kernel log records of this window were overwritten before"
                " they could be read (gaps in the /dev/kmsg sequence numbers"
            )
            if self.first_sequence:
                text += f"; the oldest record still held is number {self.first_sequence}"
            if self.overruns:
                text += f"; {self.overruns} overrun(s) while reading"
            text += ")."
        text += (
            f" The {self.total} invalid-packet records counted here are fewer than were logged; compare with the"
            " kernel's invalid counter (conntrack -S). Read the log more often, enlarge the ring buffer (log_buf_len="
            " on the kernel command line), or let journald collect it."
        )
        return text

    def _add_unparsed(self, raw: str) -> None:
        self.unparsed += 1
        if len(self.unparsed_samples) < MAX_UNPARSED_SAMPLES:
            self.unparsed_samples.append(raw.strip()[:MAX_RAW_CHARS])

    def _add_record(self, record: dict[str, t.Any]) -> None:
        self.total += 1
        self.by_reason[record["reason"]] += 1
        self.by_protocol[record["protocol"]] += 1
        if record.get("family"):
            self.by_family[record["family"]] += 1
        if record.get("src"):
            self.peers[record["src"]] += 1
        monotonic = record.get("monotonic")
        if monotonic is not None:
            if self.first_monotonic is None:
                self.first_monotonic = monotonic
            self.last_monotonic = monotonic
        if len(self.samples) < self.max_samples:
            sample = {key: value for key, value in record.items() if key != "reason_text" or value != record["reason"]}
            sample.pop("prefix", None)
            self.samples.append(sample)

    def feed_lines(self, lines: t.Iterable[str], sequences: bool = False) -> Summary:
        """Feed text lines of any supported format (including journal JSON lines).

        With ``sequences``, the sequence numbers of /dev/kmsg records are checked for gaps (see
        :meth:`note_sequence`); only for lines read from /dev/kmsg itself, since a saved file may be an excerpt.
        """
        for line in lines:
            if not line.strip() or line.startswith(" "):
                # Blank, or a /dev/kmsg dictionary continuation (" SUBSYSTEM=net").
                continue
            entry = _journal_object(line)
            if entry is not None:
                self._feed_entry(entry, raw=line)
                continue
            message, monotonic, realtime = split_line(line)
            sequence = kmsg_sequence(line) if sequences else None
            if sequence is not None:
                # Before the facility check: a forged record still takes a number, and skipping it is no loss.
                self.note_sequence(sequence, monotonic, realtime)
            if kmsg_facility(line) not in (None, KERNEL_FACILITY):
                self._not_from_kernel(message)
                continue
            self.add(message, monotonic, realtime, raw=line)
        return self

    def feed_journal_entries(self, entries: t.Iterable[t.Any]) -> Summary:
        for entry in entries:
            self._feed_entry(entry)
        return self

    def _feed_entry(self, entry: t.Any, raw: str | None = None) -> None:
        message, monotonic, realtime = split_journal_entry(entry)
        if isinstance(entry, dict) and not journal_entry_from_kernel(entry):
            self._not_from_kernel(message)
        else:
            self.add(message, monotonic, realtime, raw=raw)

    def _not_from_kernel(self, message: str) -> None:
        """A record a program wrote (not the kernel facility): never counted; counted apart when it imitates one."""
        self.lines_read += 1
        if parse_message(message) is not None or parse_kernel_event(message) is not None:
            self.forged += 1

    def finish(self) -> dict[str, t.Any]:
        """The facts dictionary; its size is bounded by max_samples, top_peers and MAX_REASONS."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._add_unparsed(pending["raw"])
        reasons = dict(self.by_reason.most_common(MAX_REASONS))
        folded = sum(self.by_reason.values()) - sum(reasons.values())
        if folded:
            reasons[OTHER] = reasons.get(OTHER, 0) + folded
        return {
            "total": self.total,
            "by_reason": reasons,
            "by_protocol": dict(self.by_protocol.most_common()),
            "by_family": dict(self.by_family.most_common()),
            "by_peer": dict(self.peers.most_common(self.top_peers)),
            "peers_distinct": len(self.peers),
            "samples": self.samples,
            "unparsed": {"count": self.unparsed, "samples": self.unparsed_samples},
            "forged_records": self.forged,
            "first_monotonic": self.first_monotonic,
            "last_monotonic": self.last_monotonic,
            "watermark_monotonic": self.watermark,
            "lines_read": self.lines_read,
            "lost_records": self.lost_records,
            "ring_buffer_wrapped": None if self.lost_records is None else bool(self.lost_records or self.overruns),
            "diagnosis": self.loss_diagnosis(),
            "kernel_events": self.kernel_events(),
            "attribution": self.attribution.finish() if self.attribution.enabled else None,
        }


def summarise_lines(
    lines: t.Iterable[str],
    since: Since | None = None,
    boot_epoch: float | None = None,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    top_peers: int = DEFAULT_TOP_PEERS,
    interfaces: dict[str, list[dict[str, t.Any]]] | None = None,
) -> dict[str, t.Any]:
    """Parse text lines (dmesg, /dev/kmsg, journalctl short-iso or JSON) into the summary."""
    return Summary(since, boot_epoch, max_samples, top_peers, interfaces).feed_lines(lines).finish()


__all__ = (
    "JOURNAL_MISSED_MESSAGE_ID",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_TOP_PEERS",
    "KERNEL_FACILITY",
    "MAX_REASONS",
    "MAX_UNPARSED_SAMPLES",
    "OTHER",
    "TCP_FLAGS",
    "Attribution",
    "Since",
    "Summary",
    "iso_utc",
    "iter_text_lines",
    "journal_entry_from_kernel",
    "journal_missed",
    "kmsg_facility",
    "kmsg_sequence",
    "normalise_reason",
    "parse_kernel_event",
    "parse_message",
    "parse_packet_dump",
    "parse_since",
    "split_any",
    "split_journal_entry",
    "split_line",
    "summarise_lines",
)
