# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._conntrack_summary import (
    TEXTFILE_NAME,
    build_summary,
    failed_namespace,
    kernel_series,
    namespace_summary,
    render_textfile,
    table_full_events,
    trim_invalid_log,
    unreadable_name_label,
    write_textfile,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

STATS = {"found": 0, "invalid": 3, "insert": 0, "insert_failed": 0, "drop": 0, "early_drop": 0, "error": 1,
         "search_restart": 0, "clash_resolve": 0, "chaintoolong": 0}


def lists_facts(count=10, maximum=100, codes=(), stats=None, **extra):
    """conntrack_lists_facts' facts as the module returns them (the keys the summary reads)."""
    facts = {
        "loaded": True, "count": count, "max": maximum, "buckets": 1024,
        "usage_percent": round(count * 100.0 / maximum, 2),
        "table": {"dumpable": True, "listed": count}, "dying": {"dumpable": True, "listed": 0},
        "unconfirmed": {"dumpable": False, "listed": None}, "expect": {"dumpable": True, "listed": 0},
        "stats": {"per_cpu": [dict(STATS, cpu=0)], "total": dict(stats or STATS)},
        "discrepancy": {"value": 0, "findings": [{"code": code, "message": code} for code in codes],
                        "table_changing": False, "diagnosis": "No problem found."},
    }
    facts.update(extra)
    return facts


def ns(facts=None, log_invalid="0", loggers=None, invalid_log=None, inum=4026531840, **kwargs):
    return namespace_summary(facts or lists_facts(), netns=kwargs.pop("netns", None), inum=inum,
                             log_invalid=log_invalid,
                             loggers={"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"} if loggers is None else loggers,
                             window=kwargs.pop("window", None), invalid_log=invalid_log or {}, **kwargs)


@pytest.mark.parametrize("release, series", [
    ("6.18.44-fc-v1098", "6.18"), ("5.10.0-46-amd64", "5.10"), ("5.14.0-427.el9.x86_64", "5.14"),
    ("6.1", "6.1"), ("", None), (None, None), ("weird", None),
])
def test_kernel_series(release, series):
    assert kernel_series(release) == series


# (id, invalid-log summary, namespace inum, expected table-full events)
TABLE_FULL_CASES = [
    ("module without table-full parsing", {"total": 0}, 7, None),
    ("log unreadable", {"error": "no journal", "kernel_events": {"table_full": {"count": 3}}}, 7, None),
    ("issue 16 shape, this namespace", {"kernel_events": {"table_full": {"count": 10, "by_netns": {"7": 10}}}}, 7, 10),
    ("issue 16 shape, another namespace", {"kernel_events": {"table_full": {"count": 10, "by_netns": {"8": 10}}}}, 7, 0),
    ("lines without a netns count for every namespace",
     {"kernel_events": {"table_full": {"count": 12, "by_netns": {"8": 10}}}}, 7, 2),
    ("explicit unattributed", {"kernel_events": {"table_full": {"count": 12, "by_netns": {"7": 1}, "unattributed": 4}}},
     7, 5),
    ("old kernel: only a count", {"kernel_events": {"table_full": {"count": 4, "first": None}}}, 7, 4),
    ("a plain number at the top", {"table_full": 3}, None, 3),
    ("unknown shape", {"table_full": "many"}, 7, None),
]


@pytest.mark.parametrize("invalid_log, inum, expected", [c[1:] for c in TABLE_FULL_CASES],
                         ids=[c[0] for c in TABLE_FULL_CASES])
def test_table_full_events(invalid_log, inum, expected):
    assert table_full_events(invalid_log, inum) == expected


def test_namespace_summary_keys():
    one = ns(lists_facts(codes=["dying_entries_pinned", "table_near_max"]), inum=7)
    assert one["count"] == 10 and one["max"] == 100 and one["usage_percent"] == 10.0
    assert one["lists"] == {"table": 10, "dying": 0, "unconfirmed": None, "expect": 0}
    assert one["drops"] == {"drop": 0, "early_drop": 0, "insert_failed": 0}
    assert one["discrepancy"]["codes"] == ["dying_entries_pinned", "table_near_max"]
    assert one["discrepancy"]["found"] is True
    assert "conntrack" not in one
    assert ns(full_lists=True)["conntrack"]["stats"]["per_cpu"]


def test_table_near_max_alone_is_not_a_discrepancy():
    assert ns(lists_facts(codes=["table_near_max"]))["discrepancy"]["found"] is False


# (id, log_invalid, loggers, no_logger)
NO_LOGGER_CASES = [
    ("off", "0", {"ipv4": None, "ipv6": None}, False),
    ("on, nothing bound", "255", {"ipv4": None, "ipv6": None}, True),
    ("on for tcp, nothing bound", "6", {"ipv4": None, "ipv6": None}, True),
    ("on, ipv4 bound", "255", {"ipv4": "nf_log_ipv4", "ipv6": None}, False),
    ("on, both bound", "255", {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}, False),
    ("unreadable sysctl", None, {"ipv4": None, "ipv6": None}, False),
]


@pytest.mark.parametrize("log_invalid, loggers, expected", [c[1:] for c in NO_LOGGER_CASES],
                         ids=[c[0] for c in NO_LOGGER_CASES])
def test_no_logger(log_invalid, loggers, expected):
    assert ns(log_invalid=log_invalid, loggers=loggers)["no_logger"] is expected


def test_unloaded_namespace():
    facts = {"loaded": False, "count": 0, "max": None, "buckets": None, "usage_percent": None,
             "discrepancy": {"value": None, "findings": [], "diagnosis": "not active"}}
    one = ns(facts)
    assert one["loaded"] is False and one["stats"] == {} and one["lists"] == {}
    summary = build_summary(now=0, kernel="6.1.0", own=one, namespaces={}, invalid_log={}, window={},
                            nf_log_all_netns=None)
    assert summary["worst"]["usage_percent"] is None and summary["worst"]["dropping"] is False


def test_build_summary_worst_over_namespaces():
    own = ns(lists_facts(count=5))
    full = ns(lists_facts(count=85, stats=dict(STATS, early_drop=2)), netns="blue", inum=8)
    dying = ns(lists_facts(codes=["dying_entries_pinned"]), netns="green", inum=9)
    gone = failed_namespace("red", "network namespace /run/netns/red does not exist")
    log = {"total": 4, "by_reason": {"invalid tcp flag combination": 4}, "samples": [{"x": 1}],
           "kernel_events": {"table_full": {"count": 3, "by_netns": {"8": 3}}}}
    own = ns(lists_facts(count=5), invalid_log=log)
    full = ns(lists_facts(count=85, stats=dict(STATS, early_drop=2)), netns="blue", inum=8, invalid_log=log)
    summary = build_summary(now=1795831203.7, kernel="6.18.44-fc-v1098", own=own,
                            namespaces={"blue": full, "green": dying, "red": gone},
                            invalid_log=trim_invalid_log(log), window={}, nf_log_all_netns="0", truncated=["zz"])
    worst = summary["worst"]
    assert summary["gathered_at"] == "2026-11-28T02:00:03Z" and summary["gathered_at_epoch"] == 1795831203
    assert summary["kernel_series"] == "6.18" and summary["nf_log_all_netns"] == 0
    assert summary["count"] == 5 and "netns" not in summary
    assert summary["namespaces_not_gathered"] == ["zz"]
    assert "samples" not in summary["invalid_log"]
    assert worst["usage_percent"] == 85.0
    assert worst["drops"] == {"drop": 0, "early_drop": 2, "insert_failed": 0}
    assert worst["dropping"] is True
    assert worst["table_full_events"] == 3
    assert worst["discrepancy"] is True and worst["discrepancy_codes"] == ["dying_entries_pinned"]
    assert worst["invalid_logged"] is True and worst["no_logger"] is False
    assert worst["errors"] == 1
    assert summary["namespaces"]["red"]["error"].startswith("network namespace")


def test_table_full_alone_means_dropping():
    log = {"total": 0, "kernel_events": {"table_full": {"count": 1}}}
    summary = build_summary(now=0, kernel="5.10.0", own=ns(invalid_log=log), namespaces={}, invalid_log=log,
                            window={}, nf_log_all_netns="0")
    assert summary["worst"]["dropping"] is True and summary["worst"]["invalid_logged"] is False


def test_unreadable_log_is_not_invalid_logged():
    log = {"error": "cannot read /dev/kmsg"}
    summary = build_summary(now=0, kernel="6.1.0", own=ns(invalid_log=log), namespaces={}, invalid_log=log,
                            window={}, nf_log_all_netns=None)
    assert summary["worst"]["invalid_logged"] is False and summary["table_full_events"] is None


def test_summary_size_is_bounded():
    """The bytes per host do not grow with the table or the log: only with the namespaces (bounded too)."""
    log = {"total": 100000, "by_reason": {f"reason {i}": i for i in range(50)}, "by_peer": {"10.0.0.1": 5},
           "samples": [{"line": "x" * 400}] * 10}
    small = build_summary(now=0, kernel="6.18", own=ns(lists_facts(count=1)), namespaces={}, invalid_log={},
                          window={}, nf_log_all_netns="0")
    big = build_summary(now=0, kernel="6.18", own=ns(lists_facts(count=10 ** 6, maximum=2 * 10 ** 6)), namespaces={},
                        invalid_log=trim_invalid_log(log), window={}, nf_log_all_netns="0")
    assert len(json.dumps(small)) < 2048
    assert len(json.dumps(big)) < 4096


def summary_for_textfile():
    own = ns(lists_facts(codes=["dying_entries_pinned"]), log_invalid="255", loggers={"ipv4": None, "ipv6": None},
             window={"active": True, "deadline": 1795832103.5})
    other = ns(lists_facts(count=85), netns='we"ird\\name', inum=8)
    log = {"total": 3, "by_reason": {"invalid tcp flag combination": 2, 'quote " and \\ and \n': 1}, "lost_records": 0}
    return build_summary(now=1795831203, kernel="6.18.44", own=own,
                         namespaces={'we"ird\\name': other, "red": failed_namespace("red", "gone")},
                         invalid_log=log, window={}, nf_log_all_netns="0")


def test_render_textfile():
    text = render_textfile(summary_for_textfile())
    lines = text.splitlines()
    assert text.endswith("\n")
    assert 'netfilter_conntrack_entries{netns=""} 10' in lines
    assert 'netfilter_conntrack_usage_ratio{netns="we\\"ird\\\\name"} 0.85' in lines
    assert 'netfilter_conntrack_stat_total{counter="invalid",netns=""} 3' in lines
    assert 'netfilter_conntrack_finding{code="dying_entries_pinned",netns=""} 1' in lines
    assert 'netfilter_conntrack_no_logger{netns=""} 1' in lines
    assert 'netfilter_conntrack_debug_window_active{netns=""} 1' in lines
    assert 'netfilter_conntrack_debug_window_deadline_timestamp_seconds{netns=""} 1795832103.5' in lines
    assert 'netfilter_conntrack_invalid_log_lines{reason="quote \\" and \\\\ and \\n"} 1' in lines
    assert 'netfilter_conntrack_gather_error{netns="red"} 1' in lines
    assert 'netfilter_conntrack_facts_gathered_timestamp_seconds 1795831203' in lines
    # One HELP and one TYPE per family, every sample after its family's header, families sorted.
    families = [line.split()[2] for line in lines if line.startswith("# TYPE")]
    assert families == sorted(families) and len(families) == len(set(families))
    for line in lines:
        if not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] in families
    # Nothing of the failed namespace but its error.
    assert not [line for line in lines if 'netns="red"' in line and "gather_error" not in line]


def test_write_textfile(tmp_path):
    text = render_textfile(summary_for_textfile())
    result = write_textfile(str(tmp_path), text)
    path = tmp_path / TEXTFILE_NAME
    assert result == {"dest": str(path), "written": True, "bytes": len(text.encode())}
    assert path.read_text(encoding="utf-8") == text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == [TEXTFILE_NAME]
    assert write_textfile(str(tmp_path), text)["written"] is False
    assert write_textfile(str(tmp_path), text + "# x\n", check_mode=True)["written"] is False
    assert path.read_text(encoding="utf-8") == text


def test_write_textfile_refuses_missing_directory(tmp_path):
    with pytest.raises(ConntrackModuleError, match="does not exist"):
        write_textfile(str(tmp_path / "nope"), "x\n")


def test_write_textfile_leaves_no_temporary_on_failure(tmp_path, monkeypatch):
    def fail(src, dst, **dir_fds):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ConntrackModuleError, match="No space left"):
        write_textfile(str(tmp_path), "x\n")
    assert os.listdir(tmp_path) == []


def test_write_textfile_replaces_a_fifo_without_waiting(tmp_path):
    os.mkfifo(tmp_path / TEXTFILE_NAME)
    signal.alarm(10)  # before the fix, opening the FIFO to compare waited for a writer forever
    try:
        result = write_textfile(str(tmp_path), "x 1\n")
    finally:
        signal.alarm(0)
    assert result["written"] is True
    assert stat.S_ISREG(os.lstat(tmp_path / TEXTFILE_NAME).st_mode)


def test_write_textfile_replaces_a_symlink_without_following_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x 1\n")
    (tmp_path / TEXTFILE_NAME).symlink_to(victim)
    assert write_textfile(str(tmp_path), "x 1\n")["written"] is True
    assert not (tmp_path / TEXTFILE_NAME).is_symlink()
    assert victim.read_text() == "x 1\n"


UNREADABLE_NAMES = [
    ("plain", "plain", None),
    ("utf-8 accents", "r\u00e9seau", None),
    ("quote, backslash, newline, tab", 'a"b\\c\nd\te', None),
    ("one byte that is not UTF-8", os.fsdecode(b"bad\xff"), "bad\\xff"),
    ("a truncated sequence", os.fsdecode(b"x\xc3"), "x\\xc3"),
]


@pytest.mark.parametrize("name, label", [c[1:] for c in UNREADABLE_NAMES], ids=[c[0] for c in UNREADABLE_NAMES])
def test_unreadable_name_label(name, label):
    assert unreadable_name_label(name) == label


def test_textfile_of_odd_names_passes_promtool(tmp_path):
    """The exposition format's escapes, checked by Prometheus' own parser (Debian package prometheus)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    label = unreadable_name_label(os.fsdecode(b"bad\xff"))
    names = {'q"uote': "", "back\\slash": "", "new\nline": "", "t\tab": "", label: "not UTF-8"}
    namespaces = {name: ns(lists_facts(count=1), netns=name, inum=9) if not error else failed_namespace(name, error)
                  for name, error in names.items()}
    summary = build_summary(now=1795831203, kernel="6.18", own=ns(lists_facts()), namespaces=namespaces,
                            invalid_log={}, window={}, nf_log_all_netns="0")
    write_textfile(str(tmp_path), render_textfile(summary))
    path = tmp_path / TEXTFILE_NAME
    checked = subprocess.run([promtool, "check", "metrics"], input=path.read_bytes(), capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert 'netfilter_conntrack_gather_error{netns="bad\\\\xff"} 1' in path.read_text().splitlines()
