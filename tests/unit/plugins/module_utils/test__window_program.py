# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host program's snapshot, enable, confirm and compare-and-restore, against a temporary /proc/sys tree and a fake
dynamic-debug control file.

The program is built with one host whose kernel is a temporary tree (``kernel_tree.TreeKernel``): /proc/sys trees
(one per named namespace), the nf_log table, and a control file that is a real capture (tests/vm/samples, Debian
5.10: formats escaped as ``\\012``, and the site the troubleshooting article enables) plus a few synthetic sites,
to which the tree kernel applies each query as lib/dynamic_debug.c does. The "enable" between snapshot and revert is
the dynamic_debug_site module itself, over the same tree. Snapshots use --no-schedule and a fake scheduler.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import time
import types

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _dynamic_debug as dd
from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_program as wp
from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_revert as wr
from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_status as wt
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._host import Kernel
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS, KEY_COUNT, KEY_LOG_INVALID, KEY_LOGGER_PREFIX, logger_key
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import Store, checksum
from ansible_collections.netfilter.conntrack.plugins.modules import dynamic_debug_site
from ansible_collections.netfilter.conntrack.tests.unit.plugins.module_utils.kernel_tree import TreeHost, TreeKernel

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SAMPLE_5_10 = os.path.join(REPO, "tests", "vm", "samples", "dynamic-debug-control-5.10.0-46-amd64.txt")
SAMPLE_6_1 = os.path.join(REPO, "tests", "vm", "samples", "dynamic-debug-control-6.1.0-56-amd64.txt")
TCP = "net/netfilter/nf_conntrack_proto_tcp.c"
# Sites no capture has: a classed one, and two pr_debug calls on one source line (one if/else line).
SYNTHETIC = "\n".join([
    r'drivers/gpu/drm/drm_vblank.c:1234 [drm]drm_update_vblank_count =_ "updating vblank count\n" class:DRM_UT_VBL',
    r'drivers/x/twice.c:7 [twice]both =_ "first\n"',
    r'drivers/x/twice.c:7 [twice]both =_ "second\n"',
    r'drivers/x/twice.c:9 [twice]slash =_ "path C:\data\x %s\n"',
]) + "\n"
PROGRAM_PATH = "/usr/local/libexec/netfilter-conntrack/conntrack-debug-window.pyz"
LOG_INVALID = KEY_LOG_INVALID
ALL_NETNS = KEY_ALL_NETNS
NF_LOG_4 = logger_key(2)
NF_LOG_6 = logger_key(10)
NF_LOG_TABLE = " 2 NONE (nf_log_ipv4,nfnetlink_log)\n10 nf_log_ipv6 (nf_log_ipv6,nfnetlink_log)\n"


class FakeScheduler:
    """Records what would be armed, cancelled and stopped (every call that changes something, in ``calls``); nothing
    is started."""

    def __init__(self):
        self.armed = []
        self.cancelled = []
        self.calls = []
        self.dead = set()   # ids whose timer or watcher was stopped or killed behind the program's back
        self.backstop_alive = False
        self.expired_arms = []   # ids armed as expired: the sweep's at once

    def arm(self, ident, deadline_boot, retry=False, expired=False):
        self.armed.append((ident, retry))
        self.expired_arms += [ident] if expired else []
        self.calls.append(("arm", ident))
        self.dead.discard(ident)
        return {"kind": "fake", "in_seconds": 1, "deadline_boot": deadline_boot}

    def alive(self, scheduler, ident):
        return bool(scheduler) and scheduler.get("kind") == "fake" and ident not in self.dead

    def cancel(self, ident):
        self.cancelled.append(ident)
        self.calls.append(("cancel", ident))
        return []

    def backstop(self):
        return {"kind": "fake", "alive": self.backstop_alive}

    def settle(self):
        self.calls.append(("settle",))
        return []

    def ensure_watchers(self, own_slot=None):
        self.calls.append(("ensure_watchers", own_slot))
        return 4242


def read_sample(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


@pytest.fixture
def kernel(tmp_path):
    """The host's /proc/sys (without the stats file: a kernel whose conntrack counters are not read), named
    namespaces' trees without nf_log_all_netns (the host's alone), the nf_log table, the control file."""
    host_values = {LOG_INVALID: "0", NF_LOG_4: "NONE", NF_LOG_6: "nf_log_ipv6", ALL_NETNS: "0", KEY_COUNT: "3"}
    netns_values = {LOG_INVALID: "0", NF_LOG_4: "NONE", NF_LOG_6: "NONE"}
    return TreeKernel(tmp_path / "kernel", host_values, netns_values, nf_log=NF_LOG_TABLE,
                      control=read_sample(SAMPLE_5_10) + SYNTHETIC)


@pytest.fixture
def proc_sys(kernel):
    return pathlib.Path(kernel.tree())


def sysctl(root, key, value=None):
    path = root.joinpath(*key.split("."))
    if value is not None:
        path.write_text(value + "\n")
    return path.read_text().strip()


@pytest.fixture
def program(tmp_path, kernel):
    runner = wp.Program(Store(str(tmp_path / "state")), PROGRAM_PATH, host=TreeHost(kernel))
    runner.scheduler = FakeScheduler()
    return runner


@pytest.fixture
def namespaces(kernel):
    """The /proc/sys tree of a namespace by its spec (None: the host's)."""
    return lambda spec: pathlib.Path(kernel.tree(spec))


def snapshot_args(*sites, duration="900", extra=()):
    argv = ["snapshot", f"--duration={duration}", "--log-invalid=tcp", "--backend=auto", "--family=ipv4",
            "--family=ipv6", "--no-schedule"]
    argv += ["--dyndbg-site=" + json.dumps(site) for site in sites] + list(extra)
    return wp.parser().parse_args(argv)


def args(*argv):
    return wp.parser().parse_args(list(argv))


def module_run(kernel, check_mode=False, **site):
    """dynamic_debug_site, as enable runs it for one dynamic_debug_sites entry."""
    params = {k: None for k in ("file", "func", "module", "format", "line", "class")}
    params.update(flags="p", state="enabled", control_path=kernel.control_path, mount_debugfs=False,
                  require_match=False)
    params.update(site)
    module = types.SimpleNamespace(params=params, check_mode=check_mode, _diff=False, warn=lambda _msg: None)
    return dynamic_debug_site.run(module, kernel)


def enable(program, proc_sys, kernel, *sites):
    """snapshot, apply the settings (the modules' writes), confirm: what the action does on success."""
    snap = program.cmd_snapshot(snapshot_args(*sites))
    sysctl(proc_sys, LOG_INVALID, "6")
    sysctl(proc_sys, NF_LOG_4, "nf_log_ipv4")
    sysctl(proc_sys, NF_LOG_6, "nf_log_ipv6")
    for site in sites:
        module_run(kernel, **site)
    confirm = program.cmd_confirm(args("confirm", f"--window={snap['window']}", *[f"--id={i}" for i in snap["namespaces"]]))
    assert not confirm.get("failed"), confirm
    return snap


# --- which sites an entry records: the module's selection -----------------------------------------------------

ARTICLE = {"file": "nf_conntrack_proto_tcp.c", "format": r"Invalid dir=%i index=%u ostate=%u\012"}

SELECTIONS = [
    ("the article's entry (octal escape, as the control file shows it)", ARTICLE, [(TCP, 1020)]),
    ("the same with a C-style \\n", dict(ARTICLE, format=r"Invalid dir=%i index=%u ostate=%u\n"), [(TCP, 1020)]),
    ("a format anchored at the start", {"format": "^tcp_in_window: "},
     [(TCP, line) for line in (698, 612, 601, 597, 501, 497, 496)]),
    ("func", {"func": "tcp_new"}, [(TCP, 827), (TCP, 780)]),
    ("func with a wildcard", {"func": "nf_conntrack_tcp_*"}, [(TCP, 1120), (TCP, 1118), (TCP, 1020), (TCP, 1014)]),
    ("a line range", {"file": "nf_conntrack_proto_tcp.c", "line": "496-501"}, [(TCP, 501), (TCP, 499), (TCP, 497), (TCP, 496)]),
    ("a single line as a number", {"file": "nf_conntrack_proto_tcp.c", "line": 1014}, [(TCP, 1014)]),
    ("class alone selects only its class", {"class": "DRM_UT_VBL"}, [("drivers/gpu/drm/drm_vblank.c", 1234)]),
    ("module does not reach classed sites", {"module": "drm"}, []),
    ("nothing on this kernel", {"func": "no_such_function"}, []),
]


@pytest.mark.parametrize("site, expected", [c[1:] for c in SELECTIONS], ids=[c[0] for c in SELECTIONS])
def test_snapshot_records_what_the_module_selects(program, kernel, site, expected):
    result = program.cmd_snapshot(snapshot_args(site))
    recorded = [(r["filename"], r["lineno"]) for r in result["shared"]["dyndbg"]]
    module = [(s["filename"], s["lineno"]) for s in module_run(kernel, check_mode=True, **site)["sites"]]
    assert recorded == module == expected
    assert kernel.control_writes == [], "snapshot only reads the control file"
    for record in result["shared"]["dyndbg"]:
        assert (record["original"], record["applied"]) == ("_", "p")
    assert result["shared"]["holders"] == ["init"], "the sites are host-wide: the shared record holds them"
    assert program.store.load("init")["dyndbg"] == [], "the window itself records no site"


def test_snapshot_records_flags_and_state(program, kernel):
    kernel.set_site_flags(TCP, 827, "pf")
    result = program.cmd_snapshot(snapshot_args({"func": "tcp_new", "flags": "lt", "state": "enabled"},
                                                {"file": "nf_conntrack_proto_tcp.c", "line": 827, "flags": "p",
                                                 "state": "disabled"}))
    records = {r["lineno"]: (r["original"], r["applied"]) for r in result["shared"]["dyndbg"]}
    assert records == {827: ("pf", "flt"), 780: ("_", "lt")}


# --- snapshot -------------------------------------------------------------------------------------------------


def test_the_real_kernel_gives_this_namespace_its_identity():
    fd, identity = Kernel().open_namespace(None)
    own = os.stat("/proc/self/ns/net")
    assert fd is None and identity == {"spec": None, "path": "/proc/self/ns/net", "dev": own.st_dev, "ino": own.st_ino}


def test_snapshot_records_the_keys_and_identity(program, proc_sys, kernel):
    result = program.cmd_snapshot(snapshot_args())
    init = result["namespaces"]["init"]
    assert result["changed"] is True and init["created"] is True
    assert init["original"] == {LOG_INVALID: "0", NF_LOG_4: "NONE", NF_LOG_6: "nf_log_ipv6"}
    _fd, identity = kernel.open_namespace(None)
    assert init["identity"] == {"dev": identity["dev"], "ino": identity["ino"]}
    data = program.store.load("init")
    assert data["keys"][LOG_INVALID] == {"original": "0", "applied": "6"}
    assert data["keys"][NF_LOG_4] == {"original": "NONE", "applied": "nf_log_ipv4"}
    assert data["confirmed"] is False and data["window"] == result["window"]
    assert data["scheduler"] == {"kind": "none"} and program.scheduler.armed == []
    assert result["dynamic_debug"] is False, "no site asked: the control file is not even looked up"
    assert "shared" not in result and program.store.ids() == ["init"], "no host-wide value asked: no shared record"
    assert "enabler" not in data, "the plain snapshot command records no enabler: its confirm may still come"
    assert data["deadline_boot"] - wr.boot_now() == pytest.approx(900, abs=5)
    assert sysctl(proc_sys, LOG_INVALID) == "0", "snapshot changes nothing"


def test_second_snapshot_keeps_the_originals_and_extends(program, proc_sys, kernel):
    first = enable(program, proc_sys, kernel, {"func": "tcp_new"})
    again = program.cmd_snapshot(snapshot_args({"func": "tcp_new"}, duration="1800"))
    init = again["namespaces"]["init"]
    assert init["created"] is False and init["recorded"] == [] and init["deadline_extended"] is True
    assert init["original"][LOG_INVALID] == "0", "not the value the first enable applied"
    assert again["shared"]["created"] is False and again["shared"]["recorded"] == []
    assert [(r["lineno"], r["original"]) for r in again["shared"]["dyndbg"]] == [(827, "_"), (780, "_")]
    assert again["window"] == first["window"]
    assert again["changed"] is False


@pytest.mark.parametrize("dead", [False, True], ids=["timer alive", "timer gone"])
def test_second_snapshot_rearms_a_dead_scheduler_and_says_so(program, proc_sys, kernel, dead):
    scheduled = ["snapshot", "--duration=900", "--log-invalid=tcp", "--backend=auto", "--family=ipv4", "--family=ipv6"]
    first = program.cmd_snapshot(args(*scheduled))
    program.cmd_confirm(args("confirm", f"--window={first['window']}", "--id=init"))
    if dead:
        program.scheduler.dead.add("init")
        assert "NOT armed" in program.cmd_status(args("status"))["msg"]
    again = program.cmd_snapshot(args(*scheduled))
    assert again["namespaces"]["init"]["rearmed"] is dead
    assert again["changed"] is dead, "re-arming a dead revert changes the host; extending a live one does not"
    assert program.scheduler.armed == [("init", False), ("init", False)]
    assert again.get("warnings") == (["init: the automatic revert of this window was NOT armed (its timer or watcher"
                                      " was gone): armed again"] if dead else None)
    program.cmd_confirm(args("confirm", f"--window={again['window']}", "--id=init"))
    assert "problems" not in program.cmd_status(args("status"))


def test_second_snapshot_with_other_settings_is_refused(program, proc_sys, kernel):
    enable(program, proc_sys, kernel)
    other = wp.parser().parse_args(["snapshot", "--duration=900", "--log-invalid=udp", "--no-schedule"])
    with pytest.raises(ConntrackModuleError, match="a debug window with other settings is open in init"):
        program.cmd_snapshot(other)


def test_snapshot_that_cannot_be_saved_leaves_nothing(program, monkeypatch):
    def full(_data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(program.store, "save", full)
    with pytest.raises(OSError):
        program.cmd_snapshot(snapshot_args({"func": "tcp_new"}))
    assert program.store.ids() == []
    assert not os.path.exists(program.store.directory), "the state directory is removed again"


def test_snapshot_refuses_a_bad_site_before_anything(program):
    with pytest.raises(ConntrackModuleError, match="would end the value"):
        program.cmd_snapshot(snapshot_args({"func": "tcp_new +p; file * "}))
    assert program.store.ids() == []


# --- confirm --------------------------------------------------------------------------------------------------


def test_confirm_marks_the_window(program):
    snap = program.cmd_snapshot(snapshot_args())
    result = program.cmd_confirm(args("confirm", f"--window={snap['window']}", "--id=init"))
    assert not result.get("failed") and result["namespaces"]["init"]["deadline"] == snap["deadline"]
    assert program.store.load("init")["confirmed"] is True


def test_confirm_with_another_window_token_reports_window_gone(program):
    program.cmd_snapshot(snapshot_args())
    result = program.cmd_confirm(args("confirm", "--window=not-this-one", "--id=init"))
    assert result["failed"] is True
    assert result["namespaces"]["init"]["window_gone"] is True
    assert "was reverted or replaced while enable was running" in result["msg"]
    assert program.store.load("init")["confirmed"] is False


def test_confirm_after_the_snapshot_was_removed_reports_window_gone(program):
    snap = program.cmd_snapshot(snapshot_args())
    program.store.remove("init")
    result = program.cmd_confirm(args("confirm", f"--window={snap['window']}", "--id=init"))
    assert result["failed"] is True and result["namespaces"]["init"]["window_gone"] is True


# --- revert: compare and restore ------------------------------------------------------------------------------


def test_revert_restores_keys_and_sites(program, proc_sys, kernel):
    before = kernel.site_flags()
    enable(program, proc_sys, kernel, ARTICLE, {"func": "tcp_new"})
    assert kernel.site_flags()[(TCP, 1020, "nf_ct_tcp: Invalid dir=%i index=%u ostate=%u\n")] == "p"
    result = program.cmd_revert(args("revert", "--id=init"))
    init, shared = result["namespaces"]["init"], result["namespaces"]["shared"]
    assert result["changed"] is True and not result.get("failed")
    assert init["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}, NF_LOG_4: {"from": "nf_log_ipv4", "to": "NONE"}}
    assert init["unchanged"] == [NF_LOG_6] and init["left"] == {}
    assert shared["restored"] == {
        f"dyndbg {TCP}:1020": {"from": "p", "to": "_"}, f"dyndbg {TCP}:827": {"from": "p", "to": "_"},
        f"dyndbg {TCP}:780": {"from": "p", "to": "_"},
    }, "the last holder's revert restores the host-wide sites"
    assert kernel.site_flags() == before
    assert (sysctl(proc_sys, LOG_INVALID), sysctl(proc_sys, NF_LOG_4)) == ("0", "NONE")
    assert program.store.ids() == [] and not os.path.exists(program.store.directory)
    assert program.scheduler.cancelled == ["init"]
    assert program.cmd_revert(args("revert", "--id=init"))["msg"] == "nothing to revert"


def test_revert_touches_only_the_recorded_sites(program, proc_sys, kernel):
    enable(program, proc_sys, kernel, {"func": "tcp_new"})
    # Meanwhile someone else switches on sites the window never recorded, in the same file and elsewhere.
    kernel.set_site_flags(TCP, 1014, "pf")
    kernel.set_site_flags("net/netfilter/nf_conntrack_core.c", 1907, "p")
    after_enable = kernel.site_flags()
    program.cmd_revert(args("revert", "--id=init"))
    changed = {key: (after_enable[key], flags) for key, flags in kernel.site_flags().items() if after_enable[key] != flags}
    assert sorted(key[1] for key in changed) == [780, 827]
    assert all(change == ("p", "_") for change in changed.values())


def test_revert_restores_one_of_two_sites_on_one_line(program, proc_sys, kernel):
    """Two pr_debug calls on one source line: the window recorded one, someone else switched the other on."""
    first, second = ("drivers/x/twice.c", 7, "first\n"), ("drivers/x/twice.c", 7, "second\n")
    enable(program, proc_sys, kernel, {"module": "twice", "format": "first"})
    kernel.set_site_flags("drivers/x/twice.c", 7, "pf", fmt="second\n")
    program.cmd_revert(args("revert", "--id=init"))
    assert kernel.site_flags()[first] == "_"
    assert kernel.site_flags()[second] == "pf", "the site the window did not record is left as someone else set it"


def test_revert_of_a_site_whose_format_has_a_backslash(program, proc_sys, kernel):
    """The control file prints a backslash as it is; the restore query still selects exactly that site."""
    before = kernel.site_flags()
    enable(program, proc_sys, kernel, {"func": "slash"})
    assert kernel.site_flags()[("drivers/x/twice.c", 9, "path C:\\data\\x %s\n")] == "p"
    result = program.cmd_revert(args("revert", "--id=init"))
    assert result["namespaces"]["shared"]["restored"]["dyndbg drivers/x/twice.c:9"] == {"from": "p", "to": "_"}
    assert kernel.site_flags() == before


def test_revert_leaves_and_reports_values_changed_by_someone_else(program, proc_sys, kernel):
    enable(program, proc_sys, kernel, {"func": "tcp_new"})
    sysctl(proc_sys, LOG_INVALID, "17")
    kernel.set_site_flags(TCP, 780, "pmf")
    result = program.cmd_revert(args("revert", "--id=init"))
    init, shared = result["namespaces"]["init"], result["namespaces"]["shared"]
    reason = "changed by someone else during the debug window: left as it is"
    assert init["left"] == {LOG_INVALID: {"current": "17", "set_by_enable": "6", "original": "0", "reason": reason}}
    assert shared["left"] == {f"dyndbg {TCP}:780": {"current": "pmf", "set_by_enable": "p", "original": "_",
                                                    "reason": reason}}
    assert sorted(init["restored"]) == [NF_LOG_4] and sorted(shared["restored"]) == [f"dyndbg {TCP}:827"]
    assert sysctl(proc_sys, LOG_INVALID) == "17"
    assert kernel.site_flags()[(TCP, 780, "nf_ct_tcp: invalid new deleting.\n")] == "pmf"
    assert "left 1 changed by others" in init["msg"] and "left 1 changed by others" in shared["msg"]
    assert program.store.ids() == [], "what is left is reported, and the window is closed"


def test_revert_compares_logger_names_case_insensitively(program, proc_sys, kernel):
    enable(program, proc_sys, kernel)
    sysctl(proc_sys, NF_LOG_4, "NF_LOG_IPV4")   # the kernel's own spelling
    result = program.cmd_revert(args("revert", "--id=init"))
    assert result["namespaces"]["init"]["restored"][NF_LOG_4] == {"from": "NF_LOG_IPV4", "to": "NONE"}


def test_revert_of_an_unconfirmed_window_expires_it_then_removes_it(program, proc_sys):
    program.cmd_snapshot(snapshot_args())
    sysctl(proc_sys, LOG_INVALID, "6")
    first = program.cmd_revert(args("revert", "--id=init"))["namespaces"]["init"]
    assert first["expired"] is True and first["changed"] is True
    assert first["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}}
    assert "the snapshot stays until enable's confirm" in first["msg"]
    kept = program.store.load("init")
    assert kept["expired"] is True and program.scheduler.armed == [("init", False)], "the last sweep is armed"
    assert program.scheduler.expired_arms == ["init"], "the sweep runs from now on, not from the 600 s deadline"
    second = program.cmd_revert(args("revert", "--id=init"))["namespaces"]["init"]
    assert second["changed"] is False and not second.get("expired")
    assert program.store.ids() == []


def test_the_rollback_of_a_failed_enable_removes_its_window_at_once(program, proc_sys):
    window = program.cmd_snapshot(snapshot_args())["window"]
    sysctl(proc_sys, LOG_INVALID, "6")
    other = program.cmd_revert(args("revert", "--id=init", "--window=not-this-window"))["namespaces"]["init"]
    assert other["expired"] is True, "another token is an ordinary revert of an unconfirmed window"
    program.store.remove("init")
    window = program.cmd_snapshot(snapshot_args())["window"]
    sysctl(proc_sys, LOG_INVALID, "6")
    rolled_back = program.cmd_revert(args("revert", "--id=init", f"--window={window}"))["namespaces"]["init"]
    assert rolled_back["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}} and not rolled_back.get("expired")
    assert program.store.ids() == [] and program.scheduler.cancelled == ["init"]


def test_confirm_after_an_early_revert_undoes_the_late_writes(program, proc_sys):
    snap = program.cmd_snapshot(snapshot_args())
    program.cmd_revert(args("revert", "--id=init"))       # the timer fired before enable got to confirm
    sysctl(proc_sys, LOG_INVALID, "6")                     # enable goes on applying
    result = program.cmd_confirm(args("confirm", f"--window={snap['window']}", "--id=init"))
    assert result["failed"] is True and result["namespaces"]["init"]["expired"] is True
    assert "use a longer duration" in result["msg"]
    assert sysctl(proc_sys, LOG_INVALID) == "0"
    assert program.store.ids() == []


def line_flags(kernel):
    return {(filename, lineno): flags for (filename, lineno, _format), flags in kernel.site_flags().items()}


def test_a_host_snapshot_of_an_older_release_is_migrated_and_its_shared_values_stay(program, proc_sys, kernel):
    """Format 2 kept nf_log_all_netns and the sites in the host's snapshot, linked by the namespaces' windows: the
    first revert moves them to the shared record, restores the host's own value, and keeps the shared ones for the
    linking window; once that window's snapshot is gone, they are restored too."""
    site = {"file": "nf_conntrack_proto_tcp.c", "line": 1014}
    snap = program.cmd_snapshot(snapshot_args(site, extra=["--all-netns=on"]))
    program.cmd_confirm(args("confirm", f"--window={snap['window']}", "--id=init"))
    module_run(kernel, **site)
    sysctl(proc_sys, LOG_INVALID, "6")
    sysctl(proc_sys, ALL_NETNS, "1")
    # The same values as format 2 recorded them: in the host's snapshot, and no shared record.
    shared, host = program.store.load("shared"), program.store.load("init")
    host["keys"][ALL_NETNS], host["dyndbg"] = shared["keys"][ALL_NETNS], shared["dyndbg"]
    host["links"] = []
    program.store.save(host)
    program.store.remove("shared")
    program.store.save(dict(host, id="netns-other", keys={}, dyndbg=[], links=["init"]))

    first = program.cmd_revert(args("revert", "--id=init"))["namespaces"]
    assert first["init"]["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}}
    assert first["shared"]["kept"] == {"values": [ALL_NETNS, "1 dynamic-debug site(s)"], "for": ["netns-other"]}
    assert sysctl(proc_sys, ALL_NETNS) == "1" and line_flags(kernel)[(TCP, 1014)] == "p"
    assert program.store.ids() == ["netns-other", "shared"]
    assert "links" not in program.store.load("netns-other")
    assert program.store.load("shared")["holders"] == ["netns-other"]

    program.store.remove("netns-other")
    last = program.cmd_revert(args("revert", "--id=init"))
    assert last["namespaces"]["init"]["msg"] == "nothing to revert"
    assert sysctl(proc_sys, ALL_NETNS) == "0", "a holder whose snapshot is gone holds nothing"
    assert line_flags(kernel)[(TCP, 1014)] == "_" and program.store.ids() == []


def test_revert_of_another_namespace_with_the_same_name_drops_the_snapshot(program, proc_sys, kernel):
    """The recorded identity is not the namespace's now (deleted and re-created): nothing is written."""
    enable(program, proc_sys, kernel)
    data = program.store.load("init")
    data["netns"]["ino"] += 1
    program.store.save(data)
    result = program.cmd_revert(args("revert", "--id=init"))
    init = result["namespaces"]["init"]
    assert init["dropped"] is True and init["restored"] == {}
    assert "is now another network namespace" in result["msg"]
    assert sysctl(proc_sys, LOG_INVALID) == "6"
    assert program.store.ids() == []


def test_revert_of_a_format1_snapshot(program, proc_sys, kernel):
    """A window opened by release 0.2.0 (flags printed in its own order) is reverted by this program."""
    kernel.set_site_flags(TCP, 1020, "pfslt")
    sysctl(proc_sys, LOG_INVALID, "255")
    old = {"format": 1, "id": "init", "netns": None, "created": 1.0, "created_monotonic": 1.0, "updated": 1.0,
           "deadline": 9e9, "confirmed": True, "scheduler": {"kind": "none"}, "stats_baseline": {},
           "keys": {LOG_INVALID: {"original": "0", "applied": "255"}},
           "dyndbg": [{"file": TCP, "line": 1020, "module": "nf_conntrack", "func": "nf_conntrack_tcp_packet",
                       "original": "_", "applied": "pflts"}]}
    old["checksum"] = checksum(old)
    program.store.ensure()
    path = program.store.path("init")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
        json.dump(old, handle)
    status = program.cmd_status(args("status"))
    assert status["namespaces"]["init"]["format_read"] == 1
    result = program.cmd_revert(args("revert", "--id=init"))["namespaces"]
    assert result["init"]["restored"] == {LOG_INVALID: {"from": "255", "to": "0"}}
    assert result["shared"]["restored"] == {f"dyndbg {TCP}:1020": {"from": "pfslt", "to": "_"}}, (
        "its sites moved to the shared record, which the host window held alone")
    assert program.store.ids() == []


# --- enable: snapshot, the modules' functions, confirm and plan in one run ---------------------------------------

def raising(error):
    def fail(*_args):
        raise error
    return fail


def enable_args(*sites, extra=()):
    argv = ["enable", "--duration=900", "--log-invalid=tcp", "--backend=auto", "--family=ipv4", "--family=ipv6",
            "--no-schedule"]
    return wp.parser().parse_args(argv + ["--dyndbg-site=" + json.dumps(site) for site in sites] + list(extra))


def test_enable_applies_and_confirms_in_one_run(program, proc_sys, kernel):
    result = program.cmd_enable(enable_args({"func": "tcp_new"}, extra=["--diff"]))
    assert not result.get("failed"), result
    assert [(step["step"], step["changed"]) for step in result["steps"]] == [
        ("Log invalid packets", True), ("Bind the loggers", True), ("Switch the dynamic-debug sites on", True)]
    assert result["steps"][-1]["matched"] == 2
    assert (sysctl(proc_sys, LOG_INVALID), sysctl(proc_sys, NF_LOG_4)) == ("6", "nf_log_ipv4")
    assert {flags for (name, _line, _fmt), flags in kernel.site_flags().items() if name == TCP and _line in (780, 827)} == {"p"}
    assert program.store.load("init", program.command)["confirmed"] is True
    probed = result["plan"]["init"]["probe"]
    assert (probed["netns"], probed["inum"], probed["initial"]) == (None, 1, True), "the host's tree, after the steps:"
    assert (probed["log_invalid"], probed["all_netns"], probed["nf_log"][10]["bound"]) == ("6", "0", "nf_log_ipv6")
    assert probed["dynamic_debug"]["tcp_sites"] > 0
    assert result["diff"][0] == {"before": f"{LOG_INVALID} = 0 (none)\n", "after": f"{LOG_INVALID} = 6 (tcp)\n"}
    assert result["namespaces"]["init"]["original"][LOG_INVALID] == "0"


def test_enable_keeps_the_snapshot_warning_beside_its_own(program, proc_sys, kernel):
    """The re-armed revert is said even when the steps warn too (here: a site entry that matches nothing)."""
    argv = ["enable", "--duration=900", "--log-invalid=tcp", "--backend=auto", "--family=ipv4", "--family=ipv6",
            "--dyndbg-site=" + json.dumps({"func": "no_such_function", "require_match": False})]
    program.cmd_enable(wp.parser().parse_args(argv))
    program.scheduler.dead.add("init")
    again = program.cmd_enable(wp.parser().parse_args(argv))
    assert again["namespaces"]["init"]["rearmed"] is True and again["changed"] is True, again
    assert again["warnings"][0].startswith("init: the automatic revert of this window was NOT armed")
    assert any("matches no site" in warning for warning in again["warnings"][1:]), again["warnings"]


FAILURES = [
    ("log_invalid", LOG_INVALID, "Log invalid packets"),
    ("loggers", NF_LOG_4, "Bind the loggers"),
    ("sites", "control", "Switch the dynamic-debug sites on"),
]


@pytest.mark.parametrize("what, refused, step", FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failing_step_rolls_back_exactly_the_snapshotted_ids(program, proc_sys, kernel, what, refused,
                                                               step):
    """Whatever was applied before the failure is restored, and the window is gone at once (not kept as expired)."""
    kernel.refuse[refused] = "the kernel said no"
    result = program.cmd_enable(enable_args({"func": "tcp_new"}))
    assert result["failed"] is True and result["failed_step"] == step
    assert result["step_failure"]["msg"].startswith("the kernel said no")
    assert list(result["rollback"]["namespaces"]) == ["init", "shared"], "the window and the sites it held"
    assert not result["rollback"].get("failed") and "kept" not in result["rollback"]["namespaces"]["shared"]
    assert (sysctl(proc_sys, LOG_INVALID), sysctl(proc_sys, NF_LOG_4)) == ("0", "NONE")
    assert "p" not in {flags for (name, _line, _fmt), flags in kernel.site_flags().items() if name == TCP}
    assert program.store.ids() == [] and result["steps"][-1]["step"] == step


def test_a_failing_confirm_rolls_back(program, proc_sys, kernel):
    """Someone reverted the window while enable applied: confirm says so and what enable wrote is undone."""
    reverted = []

    def revert_before_the_first_logger_write(key, value):
        if key.startswith(KEY_LOGGER_PREFIX) and not reverted:
            reverted.append(key)
            program.cmd_revert(wp.parser().parse_args(["revert", "--id=init"]))

    kernel.before_sysctl_write = revert_before_the_first_logger_write
    result = program.cmd_enable(enable_args())
    assert reverted, "enable bound a logger"
    assert result["failed_step"] == "Confirm the window is applied"
    assert result["step_failure"]["namespaces"]["init"]["expired"] is True
    assert (sysctl(proc_sys, LOG_INVALID), sysctl(proc_sys, NF_LOG_4)) == ("0", "NONE")
    assert program.store.ids() == []


def test_a_confirm_that_raises_still_rolls_back(program, proc_sys, monkeypatch):
    monkeypatch.setattr(program, "cmd_confirm", raising(ConntrackModuleError("the lock is held by another run")))
    result = program.cmd_enable(enable_args())
    assert result["failed_step"] == "Confirm the window is applied"
    assert result["msg"].endswith("the lock is held by another run")
    assert list(result["rollback"]["namespaces"]) == ["init"] and program.store.ids() == []
    assert sysctl(proc_sys, LOG_INVALID) == "0"


def test_enable_in_a_namespace_rolls_back_its_window_and_the_shared_record_only(program, proc_sys,
                                                                                namespaces, kernel):
    """With netns and all_netns, nf_log_all_netns goes to the shared record (no host window is opened); a failure
    reverts this enable's window and releases its hold, and leaves the other windows alone."""
    kernel.refuse[ALL_NETNS] = f"{ALL_NETNS} is read-only"
    sysctl(namespaces("other"), LOG_INVALID, "6")
    other = program.cmd_snapshot(snapshot_args(extra=["--netns=other"]))
    program.cmd_confirm(args("confirm", f"--window={other['window']}", "--netns=other"))
    before = {ident: open(program.store.path(ident), "rb").read() for ident in program.store.ids()}
    result = program.cmd_enable(enable_args(extra=["--netns=a", "--all-netns=on"]))
    assert [step["step"] for step in result["steps"]] == [
        "Log invalid packets", "Bind the loggers", "Let log lines of other namespaces reach the kernel log"]
    assert result["failed_step"] == "Let log lines of other namespaces reach the kernel log"
    assert sorted(result["rollback"]["namespaces"]) == ["netns-a", "shared"]
    assert (sysctl(namespaces("a"), LOG_INVALID), sysctl(namespaces("a"), NF_LOG_4)) == ("0", "NONE")
    assert program.store.ids() == ["netns-other"]
    assert {ident: open(program.store.path(ident), "rb").read() for ident in program.store.ids()} == before
    assert sysctl(namespaces("other"), LOG_INVALID) == "6" and sysctl(proc_sys, LOG_INVALID) == "0"


def without_nf_conntrack(kernel, program):
    """nf_conntrack not loaded: no nf_conntrack_log_invalid and none of its dynamic-debug sites until modprobe."""
    os.unlink(os.path.join(kernel.tree(), *LOG_INVALID.split(".")))
    kernel.save_sites([site for site in dd.read_control(kernel.control_path) if site.module != "nf_conntrack"])

    def load():
        kernel.sysctl(LOG_INVALID, "0")
        kernel.save_sites(dd.read_control(kernel.control_path) + dd.parse_control(read_sample(SAMPLE_5_10)))

    program.host.modules["nf_conntrack"] = load


def test_a_module_load_takes_the_snapshot_again_before_the_sites(program, kernel):
    """conntrack_log_invalid loaded nf_conntrack: its sites exist only now, so they are recorded before any write."""
    without_nf_conntrack(kernel, program)
    result = program.cmd_enable(enable_args({"func": "tcp_new"}))
    assert not result.get("failed"), result
    assert result["steps"][0]["loaded"] == "nf_conntrack" and kernel.sysctl(LOG_INVALID) == "6"
    recorded = {(r["lineno"], r["original"], r["applied"]) for r in program.store.load("shared")["dyndbg"]}
    assert recorded == {(780, "_", "p"), (827, "_", "p")}, "recorded after the load, before the write"
    assert kernel.control_writes == ["func tcp_new +p"]


def test_a_failing_second_snapshot_rolls_back_the_first(program, kernel, monkeypatch):
    without_nf_conntrack(kernel, program)
    real = program.cmd_snapshot
    calls = []

    def snapshot(a, **kwargs):
        calls.append(a)
        if len(calls) == 2:
            raise ConntrackModuleError("disk full")
        return real(a, **kwargs)

    monkeypatch.setattr(program, "cmd_snapshot", snapshot)
    result = program.cmd_enable(enable_args({"func": "tcp_new"}))
    assert result["failed_step"] == "Record the dynamic-debug sites" and result["msg"].endswith("disk full")
    assert kernel.control_writes == [] and program.store.ids() == []


def test_a_site_that_matches_nothing_warns(program, kernel):
    result = program.cmd_enable(enable_args({"func": "nope", "require_match": False}))
    assert result["steps"][-1]["matched"] == 0
    assert "matches no site on this kernel" in result["warnings"][0]


def test_sites_skipped_with_a_warning_without_dynamic_debug(program, kernel):
    os.unlink(kernel.control_path)
    result = program.cmd_enable(enable_args({"func": "tcp_new"}))
    assert [step["step"] for step in result["steps"]] == ["Log invalid packets", "Bind the loggers"]
    assert result["warnings"] == ["this kernel has no dynamic debug: dynamic_debug_sites were skipped"]


def test_check_mode_predicts_and_changes_nothing(program, proc_sys, kernel):
    result = program.cmd_enable(enable_args({"func": "tcp_new"}, extra=["--check"]))
    assert result["changed"] is True and not result.get("failed")
    assert [step["step"] for step in result["steps"]] == ["Log invalid packets", "Bind the loggers"]
    plan = result["plan"]["init"]
    assert plan["probe"]["log_invalid"] == "0", "the tree kernel is unchanged"
    assert (plan["steps"]["log_invalid"]["value"], plan["steps"]["logger"]["bound"]["ipv4"]) == ("6", "nf_log_ipv4"), (
        "the plan judges what enable would set")
    assert (sysctl(proc_sys, LOG_INVALID), sysctl(proc_sys, NF_LOG_4)) == ("0", "NONE")
    assert program.store.ids() == [] and kernel.control_writes == []


def test_check_mode_reports_a_step_that_would_fail(program):
    result = program.cmd_enable(enable_args(extra=["--check", "--backend=nf_log_ipv6"]))
    assert result["failed_step"] == "Bind the loggers" and "serves family ipv6, not ipv4" in result["msg"]
    assert "rollback" not in result


def test_a_plan_that_cannot_be_made_is_a_warning(program, kernel, monkeypatch):
    """The namespace was deleted once the window was confirmed: its plan cannot be made, the enable stands."""
    confirm = program.cmd_confirm

    def confirm_then_delete(a):
        answer = confirm(a)
        kernel.gone.add("blue")
        return answer

    monkeypatch.setattr(program, "cmd_confirm", confirm_then_delete)
    result = program.cmd_enable(enable_args(extra=["--netns=blue"]))
    assert not result.get("failed") and result["plan"] == {}
    assert result["warnings"] == ["no plan for blue: network namespace /run/netns/blue does not exist"]


# --- status ---------------------------------------------------------------------------------------------------


def test_status_reports_values_and_a_dead_scheduler(program, proc_sys, kernel):
    enable(program, proc_sys, kernel)
    status = program.cmd_status(args("status"))
    init = status["namespaces"]["init"]
    assert init["active"] is True and init["confirmed"] is True
    assert init["keys"][LOG_INVALID] == {"original": "0", "applied": "6", "current": "6"}
    assert init["scheduler"] == {"kind": "none", "alive": False}
    assert "the automatic revert is NOT armed" in status["msg"]
    assert status["nf_log_all_netns"] == "0"


def test_status_reverts_an_overdue_window_whose_scheduler_is_gone(program, proc_sys, kernel):
    enable(program, proc_sys, kernel)
    data = program.store.load("init")
    data["deadline_boot"] = wr.boot_now() - program.overdue_grace - 1   # the wall-clock deadline is still ahead
    program.store.save(data)
    status = program.cmd_status(args("status"))
    assert "the automatic revert did not run" in status["overdue"]["init"]["msg"]
    assert sysctl(proc_sys, LOG_INVALID) == "0"
    assert status["namespaces"]["init"] == {"active": False, "netns": None}


def test_status_of_an_unreadable_snapshot(program):
    program.store.ensure()
    with open(os.open(program.store.path("init"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write("{")
    status = program.cmd_status(args("status"))
    assert status["namespaces"]["init"]["unreadable"] is True
    assert "corrupted or truncated" in status["msg"]


def test_a_damaged_snapshot_of_another_window_does_not_block_enable(program, proc_sys):
    program.store.ensure()
    with open(os.open(program.store.path("netns-other"), os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        handle.write("{")
    result = program.cmd_snapshot(snapshot_args())
    assert result["namespaces"]["init"]["created"] is True
    assert program.store.load("init") is not None


# --- files on the host ----------------------------------------------------------------------------------------


@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def test_make_dirs_0755_under_umask_077(tmp_path, umask_077):
    target = tmp_path / "etc" / "ansible" / "facts.d"
    wt.make_dirs(str(target))
    for path in (tmp_path / "etc", tmp_path / "etc" / "ansible", target):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path
    wt.make_dirs(str(target))   # existing: nothing to do


def test_write_file_creates_parents_and_is_idempotent(tmp_path, umask_077):
    dest = tmp_path / "etc" / "ansible" / "facts.d" / "netfilter_conntrack.fact"
    assert wt.write_file(str(dest), b"{}\n", 0o644) == {"changed": True, "dest": str(dest)}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o755
    assert wt.write_file(str(dest), b"{}\n", 0o644)["changed"] is False
    os.chmod(dest, 0o600)
    assert wt.write_file(str(dest), b"{}\n", 0o644)["changed"] is True, "a wrong mode is rewritten"
    assert wt.write_file(str(dest), b'{"a": 1}\n', 0o644)["changed"] is True
    assert dest.read_bytes() == b'{"a": 1}\n'
    assert os.listdir(dest.parent) == [dest.name]


INVALID_LOG = os.path.join(REPO, "tests", "unit", "plugins", "module_utils", "fixtures", "invalid_log")


class RecordedTables:
    """collect's view of the conntrack tables: one fixed answer, and which namespaces were read, each with whether
    ctnetlink was loaded for it."""

    def __init__(self) -> None:
        self.gathered: list[tuple[str | None, bool]] = []

    def gather(self, netns, load_module):
        self.gathered.append((netns, load_module("nf_conntrack_netlink")))
        return {"netns": netns, "count": 2, "discrepancy": {"findings": [{"code": "dying_entries_pinned"}]}}

    @staticmethod
    def makeup():
        raise AssertionError("the answer says nothing of nf_conntrack being loaded: no make-up is read")


@pytest.fixture
def collecting(program):
    """collect with recorded conntrack tables (the plan's probe reads the tree kernel); returns what was read."""
    program.tables = RecordedTables()
    return program.tables.gathered


def collect_args(*extra):
    return args("collect", "--report-host=h1", "--log-source=file",
                "--log-path=" + os.path.join(INVALID_LOG, "dmesg-6.1.0-56-amd64.txt"), *extra)


def test_collect_builds_the_report_and_writes_the_facts_file_in_one_run(program, collecting, tmp_path, umask_077,
                                                                        monkeypatch):
    # The report says when it was collected (to the second): both collects happen in that same second.
    monkeypatch.setattr(time, "time", lambda: 1795766400.5)
    fact = tmp_path / "facts.d" / "netfilter_conntrack.fact"
    result = program.cmd_collect(collect_args(f"--facts-dest={fact}"))
    report = result["report"]
    assert report["host"] == "h1" and report["window_active"] is False
    assert report["invalid_log"]["total"] == 5 and report["invalid_log"]["since"] == "boot"
    assert report["invalid_log"]["source"] == "file"
    assert report["discrepancy"] == ["dying_entries_pinned"] and list(report["conntrack"]) == ["init"]
    assert list(report["plan"]) == ["init"] and "probe" not in report["plan"]["init"]
    assert "diagnosis" in report
    assert collecting == [(None, True)], "the initial namespace, with ctnetlink loaded when missing"
    assert [argv for argv in program.host.commands if argv[0] == "/sbin/modprobe"] == [
        ["/sbin/modprobe", "--", "nf_conntrack_netlink"]]
    assert result["changed"] is True and result["facts_file"] == {"dest": str(fact), "written": True}
    assert json.loads(fact.read_text()) == report
    assert fact.read_text() == json.dumps(report, sort_keys=True, indent=1) + "\n"
    assert stat.S_IMODE(fact.stat().st_mode) == wt.FACTS_FILE_MODE == 0o600, "the kernel log's samples: root's only"
    again = program.cmd_collect(collect_args(f"--facts-dest={fact}"))
    assert again["changed"] is False and again["facts_file"]["written"] is False


def test_collect_in_check_mode_loads_nothing_and_writes_nothing(program, collecting, tmp_path):
    fact = tmp_path / "netfilter_conntrack.fact"
    result = program.cmd_collect(collect_args(f"--facts-dest={fact}", "--check"))
    assert collecting == [(None, False)] and not [argv for argv in program.host.commands if argv[0] == "/sbin/modprobe"]
    assert result["changed"] is False and result["facts_file"] == {"dest": str(fact), "written": False}
    assert not fact.exists()


def test_collect_reads_the_log_since_the_window_opened(program, collecting, proc_sys, tmp_path):
    program.cmd_snapshot(args("snapshot", "--duration=900", "--log-invalid=tcp", "--no-schedule"))
    start = program.cmd_status(args("status"))["namespaces"]["init"]["enabled_at_monotonic"]
    with open(os.path.join(INVALID_LOG, "dmesg-6.1.0-56-amd64.txt"), encoding="utf-8") as handle:
        message = handle.readline().split("] ", 1)[1]
    log = tmp_path / "kern.log"
    log.write_text(f"[{start - 10:12.6f}] {message}[{start + 10:12.6f}] {message}")
    result = program.cmd_collect(args("collect", "--log-source=file", f"--log-path={log}"))
    assert result["report"]["window_active"] is True
    assert result["report"]["invalid_log"]["since_monotonic"] == start
    assert result["report"]["invalid_log"]["total"] == 1, "only the line logged after enable"
    assert "facts_file" not in result


def test_collect_takes_no_earlier_capture_for_a_kernel_log_window(program, collecting, proc_sys):
    # An earlier window's capture of the same namespace stays on disk after its revert.
    from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_aggregate import SCHEMA
    os.makedirs(program.capture_directory, exist_ok=True)
    with open(program.capture_file("aggregate.json"), "w", encoding="utf-8") as handle:
        json.dump({"schema": SCHEMA, "namespaces": [{"label": "init", "status": "capturing", "events": 7,
                                                     "by_reason": {"invalid tcp flag combination": 7}}]}, handle)
    before = program.cmd_collect(collect_args())["report"]
    assert before["diagnosis"]["reconciliation"]["init"]["findings"][0]["code"] == "no_window"
    program.cmd_snapshot(args("snapshot", "--duration=900", "--log-invalid=tcp", "--no-schedule"))
    report = program.cmd_collect(collect_args())["report"]
    assert report["diagnosis"]["reconciliation"]["init"]["evidence"] == "kernel log"
    assert report["capture"]["namespaces"]["init"]["events"] == 7, "still shown, as the last capture"


def test_collect_warns_of_a_dead_automatic_revert(program, collecting, proc_sys):
    program.cmd_snapshot(args("snapshot", "--duration=900", "--log-invalid=tcp"))
    program.scheduler.dead.add("init")
    result = program.cmd_collect(collect_args())
    assert any("NOT armed" in warning for warning in result["warnings"])
    assert any("NOT armed" in note for note in result["report"]["notes"])


def test_collect_enters_each_namespace(program, kernel, collecting):
    report = program.cmd_collect(collect_args("--netns=blue", "--netns=red"))["report"]
    assert sorted(kernel.trees) == ["/proc/self/ns/net", "/run/netns/blue", "/run/netns/red"]
    assert [netns for netns, dummy in collecting] == ["/run/netns/blue", "/run/netns/red"]
    assert list(report["plan"]) == ["netns-blue", "netns-red"]
    # Both namespaces' probes list the same interfaces (the tree kernel enters no real namespace, so both are the
    # test process's own): no line can be told apart, and the report says so.
    attribution = report["invalid_log"]["attribution"]
    assert attribution["unattributed"]["count"] == 5
    assert {label: one["count"] for label, one in attribution["by_namespace"].items()} == {"netns-blue": 0, "netns-red": 0}


# --- windows of several namespaces: each its own token, deadline and revert; the shared record ----------------------


def open_window(program, namespaces, kernel, spec, duration="900", all_netns=False, sites=()):
    """What enable does in one namespace (spec None: the host): snapshot, the modules' writes, confirm."""
    extra = ([f"--netns={spec}"] if spec else []) + (["--all-netns=on"] if all_netns else [])
    snap = program.cmd_snapshot(snapshot_args(*sites, duration=duration, extra=extra))
    sysctl(namespaces(spec), LOG_INVALID, "6")
    sysctl(namespaces(spec), NF_LOG_4, "nf_log_ipv4")
    if all_netns:
        sysctl(namespaces(None), ALL_NETNS, "1")
    for site in sites:
        module_run(kernel, **site)
    confirm = program.cmd_confirm(args("confirm", f"--window={snap['window']}", *[f"--id={i}" for i in snap["namespaces"]]))
    assert not confirm.get("failed"), confirm
    return snap


def host_state(program, namespaces, kernel, specs=(None, "a")):
    """Everything a command could change: the snapshot files, the values of every namespace, the sites."""
    files = {}
    if os.path.isdir(program.store.directory):
        for name in sorted(os.listdir(program.store.directory)):
            with open(os.path.join(program.store.directory, name), "rb") as handle:
                files[name] = handle.read()
    values = {(spec, key): sysctl(namespaces(spec), key) for spec in specs for key in (LOG_INVALID, NF_LOG_4)}
    values[(None, ALL_NETNS)] = sysctl(namespaces(None), ALL_NETNS)
    return files, values, kernel.site_flags(), list(program.scheduler.calls)


SITE_1014 = {"file": "nf_conntrack_proto_tcp.c", "line": 1014}


def test_the_shared_values_stay_until_their_last_holder_ends(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None, all_netns=True, sites=[SITE_1014])
    open_window(program, namespaces, kernel, "a", all_netns=True)
    assert program.store.ids() == ["init", "netns-a", "shared"]
    assert program.store.load("shared")["holders"] == ["init", "netns-a"]
    assert ALL_NETNS not in program.store.load("init")["keys"], "the host-wide value is not the host window's"

    first = program.cmd_revert(args("revert", "--id=init"))["namespaces"]
    assert first["init"]["restored"] == {LOG_INVALID: {"from": "6", "to": "0"},
                                         NF_LOG_4: {"from": "nf_log_ipv4", "to": "NONE"}}
    assert first["shared"]["kept"] == {"values": [ALL_NETNS, "1 dynamic-debug site(s)"], "for": ["netns-a"]}
    assert sysctl(namespaces(None), ALL_NETNS) == "1" and line_flags(kernel)[(TCP, 1014)] == "p"
    assert sysctl(namespaces("a"), LOG_INVALID) == "6", "the namespace's window is still open"
    assert program.store.ids() == ["netns-a", "shared"]
    assert program.store.load("shared")["holders"] == ["netns-a"]

    last = program.cmd_revert(args("revert", "--netns=a"))["namespaces"]
    assert last["netns-a"]["restored"][LOG_INVALID] == {"from": "6", "to": "0"}
    assert last["shared"]["restored"] == {ALL_NETNS: {"from": "1", "to": "0"},
                                          f"dyndbg {TCP}:1014": {"from": "p", "to": "_"}}
    assert sysctl(namespaces(None), ALL_NETNS) == "0" and line_flags(kernel)[(TCP, 1014)] == "_"
    assert program.store.ids() == [] and not os.path.exists(program.store.directory)


def test_revert_all_restores_the_shared_values_once(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None, all_netns=True)
    open_window(program, namespaces, kernel, "a", all_netns=True)
    result = program.cmd_revert(args("revert", "--all"))
    assert sorted(result["namespaces"]) == ["init", "netns-a", "shared"] and not result.get("failed")
    assert result["namespaces"]["shared"]["restored"] == {ALL_NETNS: {"from": "1", "to": "0"}}
    assert [sysctl(namespaces(spec), LOG_INVALID) for spec in (None, "a")] == ["0", "0"]
    assert sysctl(namespaces(None), ALL_NETNS) == "0" and program.store.ids() == []


def test_a_namespace_enable_opens_no_host_window_and_moves_no_deadline(program, namespaces, kernel):
    host = open_window(program, namespaces, kernel, None, duration="6")
    before = program.store.load("init")
    ns = open_window(program, namespaces, kernel, "a", duration="300", all_netns=True)
    assert list(ns["namespaces"]) == ["netns-a"] and ns["window"] != host["window"]
    after = program.store.load("init")
    assert (after["deadline_boot"], after["window"], after["keys"]) == (
        before["deadline_boot"], before["window"], before["keys"]), "the host's window is not extended nor changed"
    assert program.store.load("shared")["holders"] == ["netns-a"], "the host window did not ask for all_netns"
    assert program.store.load("netns-a")["deadline_boot"] - after["deadline_boot"] == pytest.approx(294, abs=5)


def test_a_shorter_second_enable_keeps_the_deadline(program, namespaces, kernel):
    open_window(program, namespaces, kernel, "a", duration="300")
    before = program.store.load("netns-a")["deadline_boot"]
    again = open_window(program, namespaces, kernel, "a", duration="10")
    assert again["namespaces"]["netns-a"]["deadline_extended"] is False
    assert program.store.load("netns-a")["deadline_boot"] == before, "a deadline only ever moves later, when asked"


def test_a_namespace_enable_alone_snapshots_nothing_of_the_host(program, namespaces, kernel):
    open_window(program, namespaces, kernel, "a", all_netns=True)
    assert program.store.ids() == ["netns-a", "shared"]
    assert sysctl(namespaces(None), LOG_INVALID) == "0"


def test_a_host_window_and_a_namespace_window_end_independently(program, namespaces, kernel, monkeypatch):
    open_window(program, namespaces, kernel, None, duration="6")
    open_window(program, namespaces, kernel, "a", duration="300")
    host_file = open(program.store.path("init"), "rb").read()
    reverted = program.cmd_revert(args("revert", "--netns=a"))["namespaces"]
    assert list(reverted) == ["netns-a"]
    assert open(program.store.path("init"), "rb").read() == host_file, "reverting a namespace leaves the host's window"
    assert sysctl(namespaces(None), LOG_INVALID) == "6"

    open_window(program, namespaces, kernel, "a", duration="300")
    now = wr.boot_now()
    monkeypatch.setattr(wr, "boot_now", lambda: now + 20)   # 20 s later: the host's deadline passed, not the other
    due, _next = program.due_windows()
    assert due == ["init"]
    program.revert_due(due)
    assert program.store.ids() == ["netns-a"] and sysctl(namespaces(None), LOG_INVALID) == "0"
    assert sysctl(namespaces("a"), LOG_INVALID) == "6"


# --- check mode changes nothing --------------------------------------------------------------------------------


def make_overdue(program, ident):
    data = program.store.load(ident)
    data["deadline_boot"] = wr.boot_now() - program.overdue_grace - 60
    program.store.save(data)
    program.scheduler.dead.add(ident)


def test_revert_check_changes_nothing(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None, sites=[SITE_1014])
    open_window(program, namespaces, kernel, "a", all_netns=True)
    before = host_state(program, namespaces, kernel)
    result = program.cmd_revert(args("revert", "--netns=a", "--check"))
    assert host_state(program, namespaces, kernel) == before
    one = result["namespaces"]["netns-a"]
    assert one["check_mode"] is True and one["changed"] is True
    assert one["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}, NF_LOG_4: {"from": "nf_log_ipv4", "to": "NONE"}}
    assert result["namespaces"]["shared"]["kept"]["for"] == ["init"]
    assert result["msg"] == "check mode: would revert netns-a; nothing was changed"


def test_revert_check_of_one_namespace_leaves_an_overdue_window_of_another(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None)
    open_window(program, namespaces, kernel, "a")
    make_overdue(program, "init")
    before = host_state(program, namespaces, kernel)
    result = program.cmd_revert(args("revert", "--netns=a", "--check"))
    assert list(result["namespaces"]) == ["netns-a"]
    assert host_state(program, namespaces, kernel) == before


def test_revert_check_without_a_state_directory_creates_none(program):
    result = program.cmd_revert(args("revert", "--check"))
    assert result["msg"] == "nothing to revert" and not os.path.exists(program.store.directory)


def test_revert_all_check_predicts_what_the_real_run_restores(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None, all_netns=True)
    open_window(program, namespaces, kernel, "a", all_netns=True)
    predicted = program.cmd_revert(args("revert", "--all", "--check"))["namespaces"]["shared"]
    real = program.cmd_revert(args("revert", "--all"))["namespaces"]["shared"]
    assert real["restored"] == {ALL_NETNS: {"from": "1", "to": "0"}}
    assert predicted.get("restored") == real["restored"] and "kept" not in predicted


def test_status_check_changes_nothing_and_says_overdue_loudly(program, namespaces, kernel):
    open_window(program, namespaces, kernel, None, all_netns=True)
    make_overdue(program, "init")
    before = host_state(program, namespaces, kernel, specs=(None,))
    status = program.cmd_status(args("status", "--check"))
    assert host_state(program, namespaces, kernel, specs=(None,)) == before
    assert "overdue" not in status and status["namespaces"]["init"]["active"] is True
    assert any(problem.startswith("init: OVERDUE: past its deadline") for problem in status["problems"])
    assert status["shared"]["holders"] == ["init"]

    real = program.cmd_status(args("status"))
    assert "the automatic revert did not run" in real["overdue"]["init"]["msg"]
    assert sysctl(namespaces(None), LOG_INVALID) == "0" and sysctl(namespaces(None), ALL_NETNS) == "0"
    assert program.store.ids() == []


def test_collect_check_leaves_an_overdue_window(program, namespaces, kernel, collecting):
    open_window(program, namespaces, kernel, None)
    make_overdue(program, "init")
    before = host_state(program, namespaces, kernel, specs=(None,))
    result = program.cmd_collect(collect_args("--check"))
    assert host_state(program, namespaces, kernel, specs=(None,)) == before
    assert any("OVERDUE" in warning for warning in result["warnings"])


# --- deadlines on CLOCK_BOOTTIME -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [-3600, 3600], ids=["wall clock one hour back", "wall clock one hour ahead"])
def test_a_wall_clock_step_moves_no_deadline(program, namespaces, kernel, monkeypatch, step):
    open_window(program, namespaces, kernel, None, duration="15")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + step)
    status = program.cmd_status(args("status"))
    init = status["namespaces"]["init"]
    assert 10 <= init["remaining_seconds"] <= 15, init
    assert init["deadline"] == pytest.approx(time.time() + init["remaining_seconds"], abs=2), "shown as of now"
    assert "overdue" in status and status["overdue"] == {} and init["active"] is True
    assert program.due_windows()[0] == []


# --- the enabling process --------------------------------------------------------------------------------------


def dead_process():
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return {"pid": int(proc.stdout), "start": "1"}


@pytest.mark.parametrize("enabler, kept", [
    (None, True),
    ("this process", True),
    ("a process that exited", False),
], ids=["plain snapshot: no enabler", "enabler alive", "enabler gone"])
def test_an_unconfirmed_window_is_kept_expired_only_while_its_enabler_runs(program, proc_sys, enabler, kept):
    program.cmd_snapshot(snapshot_args())
    if enabler is not None:
        data = program.store.load("init")
        data["enabler"] = ({"pid": os.getpid(), "start": wr.process_start(os.getpid())} if enabler == "this process"
                           else dead_process())
        program.store.save(data)
    sysctl(proc_sys, LOG_INVALID, "6")
    one = program.cmd_revert(args("revert", "--id=init"))["namespaces"]["init"]
    assert one["restored"] == {LOG_INVALID: {"from": "6", "to": "0"}}
    assert bool(one.get("expired")) is kept
    assert program.store.ids() == (["init"] if kept else [])


def test_an_expired_window_whose_enabler_died_is_due_at_once(program, proc_sys):
    program.cmd_snapshot(snapshot_args())
    program.cmd_revert(args("revert", "--id=init"))
    assert program.due_windows()[0] == [], "the last sweep is 600 s away and the snapshot command may confirm"
    data = program.store.load("init")
    data["enabler"] = dead_process()
    program.store.save(data)
    assert program.due_windows()[0] == ["init"]


def test_enable_records_its_own_process_as_enabler(program):
    program.cmd_enable(enable_args())
    assert program.store.load("init")["enabler"] == {"pid": os.getpid(), "start": wr.process_start(os.getpid())}


# --- windows of an older release ------------------------------------------------------------------------------


def plant_format1(program, ident, spec, keys, created=1.0):
    old = {"format": 1, "id": ident, "netns": spec, "created": created, "created_monotonic": 1.0, "updated": 1.0,
           "deadline": time.time() + 900, "confirmed": True, "scheduler": {"kind": "none"}, "stats_baseline": {},
           "keys": keys, "dyndbg": []}
    old["checksum"] = checksum(old)
    program.store.ensure()
    with open(os.open(program.store.path(ident), os.O_WRONLY | os.O_CREAT, 0o600), "w", encoding="utf-8") as handle:
        json.dump(old, handle)


def test_migrate_legacy_moves_the_host_snapshot_0_2_0_took_for_a_namespaces_enable(program, namespaces):
    """0.2.0 recorded every value of the host in the snapshot it took with a namespace's (same creation time) and
    applied only nf_log_all_netns there: all of it moves to the shared record, held by the namespace's window."""
    sysctl(namespaces(None), ALL_NETNS, "1")
    sysctl(namespaces("a"), LOG_INVALID, "255")
    plant_format1(program, "init", None, {LOG_INVALID: {"original": "0", "applied": "0"},
                                          ALL_NETNS: {"original": "0", "applied": "1"}})
    plant_format1(program, "netns-a", "a", {LOG_INVALID: {"original": "0", "applied": "255"}})
    assert program.migrate_legacy() == ["init", "netns-a"]
    shared = program.store.load("shared")
    assert shared["keys"] == {LOG_INVALID: {"original": "0", "applied": "0"},
                              ALL_NETNS: {"original": "0", "applied": "1"}}
    assert shared["holders"] == ["netns-a"] and program.store.ids() == ["netns-a", "shared"]
    assert program.scheduler.cancelled == ["init"] and "links" not in program.store.load("netns-a")
    assert program.migrate_legacy() == [], "done once"

    program.cmd_revert(args("revert", "--netns=a"))
    assert (sysctl(namespaces("a"), LOG_INVALID), sysctl(namespaces(None), ALL_NETNS)) == ("0", "0")
    assert program.store.ids() == []


def test_migrate_legacy_keeps_a_host_window_of_its_own(program, namespaces):
    """A format-1 host window opened on its own (another creation time): its nf_log_all_netns moves to the shared
    record, which it holds; its own value stays its own, and each window ends on its own."""
    for spec in (None, "a"):
        sysctl(namespaces(spec), LOG_INVALID, "255")
    sysctl(namespaces(None), ALL_NETNS, "1")
    plant_format1(program, "init", None, {LOG_INVALID: {"original": "0", "applied": "255"},
                                          ALL_NETNS: {"original": "0", "applied": "1"}}, created=2.0)
    plant_format1(program, "netns-a", "a", {LOG_INVALID: {"original": "0", "applied": "255"}})
    program.migrate_legacy()
    assert program.store.load("shared")["keys"] == {ALL_NETNS: {"original": "0", "applied": "1"}}
    assert program.store.load("shared")["holders"] == ["init"]
    assert list(program.store.load("init")["keys"]) == [LOG_INVALID]

    program.cmd_revert(args("revert", "--netns=a"))
    assert (sysctl(namespaces("a"), LOG_INVALID), sysctl(namespaces(None), LOG_INVALID)) == ("0", "255")
    assert sysctl(namespaces(None), ALL_NETNS) == "1"
    program.cmd_revert(args("revert", "--id=init"))
    assert (sysctl(namespaces(None), LOG_INVALID), sysctl(namespaces(None), ALL_NETNS)) == ("0", "0")
    assert program.store.ids() == []


def test_a_format1_host_snapshot_alone_restores_its_values(program, namespaces):
    sysctl(namespaces(None), ALL_NETNS, "1")
    plant_format1(program, "init", None, {ALL_NETNS: {"original": "0", "applied": "1"}})
    result = program.cmd_revert(args("revert", "--id=init"))
    assert result["namespaces"]["shared"]["restored"] == {ALL_NETNS: {"from": "1", "to": "0"}}
    assert sysctl(namespaces(None), ALL_NETNS) == "0" and program.store.ids() == []


# --- the watcher ----------------------------------------------------------------------------------------------


@pytest.fixture
def sighup():
    before = signal.getsignal(signal.SIGHUP)
    yield
    signal.signal(signal.SIGHUP, before)


def test_the_watcher_reverts_at_the_deadline_and_exits_when_no_window_is_left(program, proc_sys, kernel,
                                                                              monkeypatch, sighup):
    enable(program, proc_sys, kernel)
    clock = {"now": wr.boot_now()}
    deadline = program.store.load("init")["deadline_boot"]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        assert sysctl(proc_sys, LOG_INVALID) == "6", "nothing is reverted before the deadline"
        assert len(sleeps) < 1000, "the watcher does not exit"
        clock["now"] += seconds

    monkeypatch.setattr(wr, "boot_now", lambda: clock["now"])
    monkeypatch.setattr(wr.time, "sleep", sleep)
    assert program.cmd_wait_and_revert(args("wait-and-revert")) == {"changed": False, "msg": "no window left"}
    assert clock["now"] >= deadline and sysctl(proc_sys, LOG_INVALID) == "0"
    assert ("ensure_watchers", "watcher") in program.scheduler.calls, "the partner is kept alive meanwhile"
    assert program.store.ids() == [] and not os.path.exists(program.store.directory)


def test_the_watcher_with_no_window_exits_at_once(program, monkeypatch, sighup):
    monkeypatch.setattr(wr.time, "sleep", raising(AssertionError("the watcher waits for nothing")))
    assert program.cmd_wait_and_revert(args("wait-and-revert", "--slot=watcher-partner"))["msg"] == "no window left"
    assert program.scheduler.calls == []


# --- where root installs and runs the program -------------------------------------------------------------------


@pytest.fixture
def safe_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    return root


def test_unsafe_directory_accepts_a_directory_only_its_owner_writes(safe_root):
    (safe_root / "libexec").mkdir(mode=0o755)
    assert wp.unsafe_directory(str(safe_root / "libexec")) is None
    assert wp.unsafe_directory(str(safe_root / "libexec" / "not-yet" / "created")) is None


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777], ids=["group", "others", "everyone"])
def test_unsafe_directory_refuses_a_parent_others_can_write(safe_root, mode):
    parent = safe_root / "shared"
    (parent / "libexec").mkdir(parents=True, mode=0o755)
    os.chmod(parent, mode)
    assert wp.unsafe_directory(str(parent / "libexec")) == (
        f"{parent} is writable by group or others (mode {mode:04o})")


def test_unsafe_directory_refuses_a_parent_owned_by_another_user(safe_root):
    parent = safe_root / "users"
    (parent / "libexec").mkdir(parents=True, mode=0o755)
    os.chown(parent, 65534, 65534)
    assert wp.unsafe_directory(str(parent / "libexec")) == f"{parent} is owned by uid 65534"


def test_unsafe_directory_refuses_a_symlink(safe_root, tmp_path):
    (safe_root / "real").mkdir(mode=0o755)
    os.symlink(str(safe_root / "real"), str(safe_root / "link"))
    assert wp.unsafe_directory(str(safe_root / "link" / "libexec")) == (
        f"{safe_root / 'link'} is not a directory (a symlink or a file)")


def test_unsafe_directory_accepts_a_root_owned_sticky_parent_like_tmp(safe_root):
    sticky = safe_root / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    (sticky / "mine").mkdir(mode=0o700)
    assert wp.unsafe_directory(str(sticky / "mine")) is None
    assert wp.unsafe_directory(str(sticky)) == f"{sticky} is writable by group or others (mode 1777)", (
        "the sticky bit protects the entries of the directory, not a file installed straight into it")


def test_install_refuses_an_unsafe_directory_and_writes_nothing(safe_root):
    app = safe_root / "app.pyz"
    app.write_bytes(b"PK fake archive")
    target = safe_root / "open"
    target.mkdir()
    os.chmod(target, 0o777)
    program, failure = wp.install(str(app), str(target / "conntrack-debug-window.pyz"))
    assert program == str(app) and failure["unsafe_path"] is True and failure["install_failed"] is True
    assert failure["msg"].startswith(f"refusing to install {target / 'conntrack-debug-window.pyz'} as root: {target}"
                                     " is writable by group or others")
    assert os.listdir(target) == []


def test_a_format1_host_snapshot_and_a_new_namespace_window_share_nf_log_all_netns(program, namespaces, kernel):
    """A window of release 0.2.0 set nf_log_all_netns; a namespace window opened now asks for it too. Whichever ends
    first, the value stays while the other is open, and the host's own value comes back after the last."""
    sysctl(namespaces(None), ALL_NETNS, "1")
    plant_format1(program, "init", None, {ALL_NETNS: {"original": "0", "applied": "1"}})
    open_window(program, namespaces, kernel, "b", all_netns=True)
    program.cmd_revert(args("revert", "--id=init"))
    assert sysctl(namespaces(None), ALL_NETNS) == "1", "netns-b's window still needs it"
    program.cmd_revert(args("revert", "--netns=b"))
    assert sysctl(namespaces(None), ALL_NETNS) == "0", "the value before any window"
    assert program.store.ids() == []


def test_the_watcher_does_not_exit_past_a_window_opened_as_it_decides_to(program, proc_sys, kernel, monkeypatch,
                                                                         sighup):
    real_windows = program.store.windows
    opened = []

    def lock_is_free():
        try:
            fd = os.open(os.path.join(program.store.directory, "lock"), os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    def windows():
        found = real_windows()
        if not found and not opened and lock_is_free():
            # The watcher found no window without holding the lock. Right after that look, an enable takes the lock,
            # saves its window and arms it, seeing this watcher alive.
            opened.append(enable(program, proc_sys, kernel))
        return found

    enable(program, proc_sys, kernel)   # the last window, which the watcher reverts at its deadline
    start = wr.boot_now()
    clock = {"now": start}

    def sleep(seconds):
        assert clock["now"] < start + 10000, "the watcher does not exit"
        clock["now"] += seconds

    monkeypatch.setattr(program.store, "windows", windows)
    monkeypatch.setattr(wr, "boot_now", lambda: clock["now"])
    monkeypatch.setattr(wr.time, "sleep", sleep)
    program.cmd_wait_and_revert(args("wait-and-revert"))
    assert opened, "the watcher looked for windows without the lock"
    assert sysctl(proc_sys, LOG_INVALID) == "0", "the window opened meanwhile is reverted at its deadline"
    assert program.store.ids() == []


@pytest.mark.parametrize("exc, as_root, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/run/netfilter-conntrack"), False,
     "/run/netfilter-conntrack: Permission denied (running as uid 65534: the program needs root)"),
    (PermissionError(errno.EACCES, "Permission denied", "/run/netfilter-conntrack"), True,
     "/run/netfilter-conntrack: Permission denied"),
    (OSError(errno.ENOSPC, "No space left on device"), False, "No space left on device"),
], ids=["refused as a user", "refused as root", "no file named"])
def test_an_os_error_names_its_file_and_says_when_root_is_needed(monkeypatch, exc, as_root, expected):
    monkeypatch.setattr(wp.os, "geteuid", lambda: 0 if as_root else 65534)
    assert wp.os_error_message(exc) == expected
