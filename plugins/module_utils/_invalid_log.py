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

``_kernel_log_lines`` removes those wrappers, ``_invalid_log_records`` parses the message and attributes
it to a namespace; :class:`Summary` here folds the records into the bounded facts.
"""

from __future__ import annotations

import typing as t
from collections import Counter

from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log_records import (
    MAX_INTERFACES,
    TCP_FLAGS,
    Attribution,
    has_packet_dump,
    is_dump_continuation,
    mac_field,
    normalise_reason,
    parse_kernel_event,
    parse_message,
    parse_packet_dump,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._kernel_log_lines import (
    JOURNAL_MISSED_MESSAGE_ID,
    KERNEL_FACILITY,
    Since,
    iso_utc,
    iter_text_lines,
    journal_entry_from_kernel,
    journal_missed,
    journal_object,
    kmsg_facility,
    kmsg_sequence,
    parse_since,
    split_any,
    split_journal_entry,
    split_line,
)

DEFAULT_MAX_SAMPLES = 10
DEFAULT_TOP_PEERS = 10
# Bounds that keep the summary small whatever the input: distinct reasons are a short kernel-defined
# list once numbers are normalised, but garbage must not be able to grow the payload.
MAX_REASONS = 50
MAX_UNPARSED_SAMPLES = 3
MAX_RAW_CHARS = 300
OTHER = "(other)"


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
            if is_dump_continuation(message.strip()):
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
            if record["reason_text"] and not has_packet_dump(record["reason_text"]):
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
            label = self.attribution.attribute(record, mac_field(message))
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
            entry = journal_object(line)
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
