# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unwrap kernel log lines as each reader gives them: ``(message, monotonic, realtime)``; pure.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

dmesg prefixes ``[  304.507921] ``, /dev/kmsg ``6,1234,304507921,-;``, journalctl ``short-iso`` and rsyslog
``2026-11-27T03:47:58+0000 host kernel: ``, and ``journalctl -o json`` objects (which carry
``_SOURCE_MONOTONIC_TIMESTAMP``). Also the start of a reading (:class:`Since`), the kernel's facility and
journald's "Missed N kernel messages". ``_invalid_log`` summarises the messages.
"""

from __future__ import annotations

import datetime
import json
import re
import typing as t

KERNEL_FACILITY = 0

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


def journal_object(line: str) -> dict[str, t.Any] | None:
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
    entry = journal_object(line)
    return split_line(line) if entry is None else split_journal_entry(entry)


__all__ = (
    "JOURNAL_MISSED_MESSAGE_ID",
    "KERNEL_FACILITY",
    "Since",
    "iso_utc",
    "iter_text_lines",
    "journal_entry_from_kernel",
    "journal_missed",
    "journal_object",
    "kmsg_facility",
    "kmsg_sequence",
    "parse_since",
    "split_any",
    "split_journal_entry",
    "split_line",
)
