# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read the kernel log (the journal, /dev/kmsg, dmesg or a file) into an invalid-packet summary.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The module ``conntrack_invalid_log_facts`` and the host program's ``collect`` command both read
through :func:`read_invalid_log`; they differ only in the host they pass (``_host.ModuleHost``
runs commands with ``run_command``, ``_host.ProcessHost`` as child processes). The parsing and
the summary are the pure code of ``_invalid_log``.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tempfile
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import C_LOCALE
from ansible_collections.netfilter.conntrack.plugins.module_utils._invalid_log import (
    DEFAULT_MAX_SAMPLES,
    DEFAULT_TOP_PEERS,
    JOURNAL_MISSED_MESSAGE_ID,
    Since,
    Summary,
    iso_utc,
    iter_text_lines,
    parse_since,
)

SOURCES = ("auto", "journal", "kmsg", "dmesg", "file")
KMSG = "/dev/kmsg"
BOOT_ID = "/proc/sys/kernel/random/boot_id"
MAX_STDERR = 65536
JOURNAL_FIELDS = "MESSAGE,_SOURCE_MONOTONIC_TIMESTAMP,__REALTIME_TIMESTAMP,__MONOTONIC_TIMESTAMP,_TRANSPORT,SYSLOG_FACILITY"


def boot_epoch() -> float:
    """Wall-clock time of boot on the CLOCK_MONOTONIC scale (which the kernel log clock follows closely)."""
    return time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)


def read_boot_id() -> str | None:
    try:
        with open(BOOT_ID, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return None


def stream_lines(cmd: list[str], consume: t.Callable[[t.Iterator[str]], t.Any]) -> tuple[int, str]:
    """Run the argv list ``cmd`` in the C locale and pass its stdout to ``consume`` as decoded lines, while it is
    written; returns the exit status and the first 64 KiB of stderr.

    run_command() collects the whole output in memory (the kernel journal of a busy boot is hundreds of megabytes,
    and collecting it took quadratic time), so the journal is read from a pipe instead: memory stays constant and
    time linear however much the command prints. stderr goes to a temporary file, so that a chatty stderr cannot
    block the pipe. If ``consume`` raises, the command is killed.
    """
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
                                    env=dict(os.environ, **C_LOCALE), close_fds=True)
        except OSError as exc:
            raise ConntrackModuleError(f"cannot run {cmd[0]}: {exc.strerror}", cmd=cmd) from exc
        stdout = t.cast(t.IO[bytes], proc.stdout)
        try:
            consume(iter_text_lines(stdout))
        except BaseException:
            proc.kill()
            raise
        finally:
            stdout.close()
            rc = proc.wait()
        errors.seek(0)
        err = errors.read(MAX_STDERR).decode("utf-8", "replace")
    return rc, err


def journalctl_base(host: t.Any) -> list[str] | None:
    path = host.which("journalctl", [])
    return [path, "-k", "-b", "--no-pager", "-q"] if path else None


def journal_has_kernel_messages(host: t.Any) -> bool:
    base = journalctl_base(host)
    if base is None:
        return False
    rc, out, dummy = host.run(base + ["-n", "1", "-o", "json"])
    return rc == 0 and out.strip().startswith("{")


def read_journal(host: t.Any, summary: Summary) -> None:
    base = journalctl_base(host)
    if base is None:
        raise ConntrackModuleError("source=journal: journalctl is not installed")
    cmd = base + ["-o", "json", f"--output-fields={JOURNAL_FIELDS}"]
    rc, err = stream_lines(cmd, summary.feed_lines)
    if rc != 0 and "output-fields" in err and not summary.lines_read:  # systemd older than 236
        cmd = base + ["-o", "json"]
        rc, err = stream_lines(cmd, summary.feed_lines)
    if rc != 0:
        raise ConntrackModuleError(f"journalctl failed with rc={rc}: {err.strip()}", rc=rc, stderr=err, cmd=cmd)
    read_journal_missed(host, summary)


def read_journal_missed(host: t.Any, summary: Summary) -> None:
    """Feed journald's own "Missed N kernel messages" reports of this boot (few, so host.run is fine).

    Journal sequence numbers cannot show lost kernel records: the kernel's are not stored, and the journal's
    own (__SEQNUM) count every entry of every transport, so gaps between kernel entries are normal. journald
    itself compares the /dev/kmsg numbers it reads and logs this report when some are missing.
    """
    path = host.which("journalctl", [])
    if path is None:
        return
    rc, out, dummy = host.run([path, "-b", "--no-pager", "-q", "-o", "json", f"MESSAGE_ID={JOURNAL_MISSED_MESSAGE_ID}"])
    if rc != 0:
        return  # lost_records stays null: unknown
    entries = []
    for line in out.splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    summary.feed_missed_entries(entries)


def read_kmsg(summary: Summary, path: str = KMSG) -> None:
    """Read every record in the kernel ring buffer, without blocking (O_NONBLOCK until EAGAIN)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConntrackModuleError(f"cannot open {path}: {exc.strerror}") from exc
    try:
        while True:
            try:
                chunk = os.read(fd, 16384)  # one record per read
            except OSError as exc:
                if exc.errno == errno.EAGAIN:
                    break
                if exc.errno == errno.EPIPE:
                    # Records were overwritten before we read them; the next read returns the oldest one left,
                    # and its sequence number shows how many were lost.
                    summary.note_overrun()
                    continue
                raise ConntrackModuleError(f"cannot read {path}: {exc.strerror}") from exc
            if not chunk:
                break
            summary.feed_lines(chunk.decode("utf-8", "replace").splitlines(), sequences=True)
    finally:
        os.close(fd)


def read_dmesg(host: t.Any, summary: Summary) -> None:
    """dmesg's kernel-facility records (``--facility=kern``: plain dmesg also prints what programs wrote to
    /dev/kmsg); a dmesg without that option (busybox) is read whole, with a warning."""
    path = host.which("dmesg", [])
    if path is None:
        raise ConntrackModuleError("source=dmesg: dmesg is not installed")
    rc, out, err = host.run([path, "--facility=kern"])
    if rc != 0:
        rc, out, err = host.run([path])
        if rc == 0:
            host.warn("this dmesg cannot select the kernel facility (--facility): lines programs wrote to /dev/kmsg"
                      " are counted as well; source=kmsg tells them apart")
    if rc != 0:
        raise ConntrackModuleError(f"dmesg failed with rc={rc}: {err.strip()}", rc=rc, stdout=out, stderr=err, cmd=[path])
    summary.feed_lines(out.splitlines())


def read_file(path: str, summary: Summary) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            summary.feed_lines(handle)
    except OSError as exc:
        raise ConntrackModuleError(f"cannot read {path}: {exc.strerror}") from exc


def check_interfaces(value: t.Any) -> dict[str, list[dict[str, t.Any]]] | None:
    """The interfaces option as Summary wants it; refuses a shape it cannot use rather than ignoring it."""
    if not value:
        return None
    owners = {}
    for label, interfaces in value.items():
        if not isinstance(interfaces, list) or not all(isinstance(one, dict) and one.get("name") for one in interfaces):
            raise ConntrackModuleError(f"interfaces[{label!r}] must be a list of dictionaries with a name (and ifindex, mac)")
        owners[str(label)] = interfaces
    return owners


def pick_source(host: t.Any) -> str:
    """What source=auto reads: the journal when it holds this boot's kernel messages, else /dev/kmsg, else dmesg."""
    if journal_has_kernel_messages(host):
        return "journal"
    if os.access(KMSG, os.R_OK):
        return "kmsg"
    if host.which("dmesg", []):
        return "dmesg"
    raise ConntrackModuleError(
        f"no kernel log source: journald has no kernel messages of this boot, {KMSG} is not readable"
        " and dmesg is not installed")


def read_invalid_log(host: t.Any, source: str = "auto", log_path: str | None = None, since: t.Any = None,
                     since_monotonic: float | None = None, max_samples: int = DEFAULT_MAX_SAMPLES,
                     top_peers: int = DEFAULT_TOP_PEERS, interfaces: t.Any = None) -> dict[str, t.Any]:
    """The conntrack_invalid facts: the invalid-packet lines of ``source`` since ``since`` (a time, an age or
    V(boot)) or ``since_monotonic`` (CLOCK_MONOTONIC seconds), summarised. The diagnosis (lost records, a wrapped
    ring buffer) is also a warning."""
    if max_samples < 0 or top_peers < 0:
        raise ConntrackModuleError("max_samples and top_peers must be 0 or more")
    if source not in SOURCES:
        raise ConntrackModuleError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    if since is not None and since_monotonic is not None:
        raise ConntrackModuleError("since and since_monotonic are mutually exclusive")
    try:
        since_realtime = parse_since(since, now=time.time())
    except ValueError as exc:
        raise ConntrackModuleError(str(exc)) from exc
    window = Since(monotonic=since_monotonic, realtime=since_realtime)
    # A file may come from another host: its kernel timestamps cannot be converted with this host's boot time.
    summary = Summary(window, None if source == "file" else boot_epoch(), max_samples, top_peers,
                      check_interfaces(interfaces))
    if source == "auto":
        source = pick_source(host)
    if source == "journal":
        read_journal(host, summary)
        if not summary.lines_read:
            host.warn("the journal holds no kernel messages of the current boot; try source=kmsg")
    elif source == "kmsg":
        read_kmsg(summary)
        summary.loss_checked()
    elif source == "dmesg":
        read_dmesg(host, summary)
    else:
        if not log_path:
            raise ConntrackModuleError("source=file needs log_path")
        read_file(log_path, summary)

    facts = summary.finish()
    if facts["diagnosis"]:
        host.warn(facts["diagnosis"])
    if facts["forged_records"]:
        host.warn(f"{facts['forged_records']} record(s) in the kernel log look like conntrack kernel messages but were"
                  " written by a program (not the kernel facility): not counted")
    facts["source"] = source
    facts["since"] = iso_utc(since_realtime) if since_realtime is not None else "boot"
    facts["since_monotonic"] = since_monotonic
    facts["boot_id"] = read_boot_id()
    return facts


__all__ = ("KMSG", "SOURCES", "check_interfaces", "pick_source", "read_dmesg", "read_file", "read_invalid_log", "read_journal",
           "read_kmsg", "stream_lines")
