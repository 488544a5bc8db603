# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The debug window's state directory: snapshot ids, format upgrade, refusals, atomic save, the lock."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import stat

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_store as ws
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

# --- snapshot ids ---------------------------------------------------------------------------------------------

PATH_HASH = "path-" + hashlib.sha256(b"/proc/4242/ns/net").hexdigest()[:16]

SNAPSHOT_IDS = [
    ("connection's namespace", None, "init"),
    ("empty spec is the connection's namespace", "", "init"),
    ("name under /run/netns", "blue", "netns-blue"),
    ("name with every allowed punctuation", "a_b.c@d:e+f-g", "netns-a_b.c@d:e+f-g"),
    ("path is hashed", "/proc/4242/ns/net", PATH_HASH),
    ("another path, another hash", "/run/netns/blue", "path-" + hashlib.sha256(b"/run/netns/blue").hexdigest()[:16]),
]


@pytest.mark.parametrize("spec, expected", [c[1:] for c in SNAPSHOT_IDS], ids=[c[0] for c in SNAPSHOT_IDS])
def test_snapshot_id(spec, expected):
    assert ws.snapshot_id(spec) == expected
    assert ws.check_id(expected) == expected


BAD_SPECS = [".", "..", "a/b", "a b", "x" * 256, "semi;colon", "new\nline", "star*"]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_snapshot_id_refuses(spec):
    with pytest.raises(ConntrackModuleError, match="not a valid namespace name"):
        ws.snapshot_id(spec)


BAD_IDS = ["", "netns-", "netns-a/b", "path-0123", "path-" + "g" * 16, "../init", "init.json", "INIT", None, 3,
           "netns-../../etc"]


@pytest.mark.parametrize("ident", BAD_IDS)
def test_check_id_refuses(ident):
    with pytest.raises(ConntrackModuleError, match="is not a snapshot id"):
        ws.check_id(ident)


# --- checksum -------------------------------------------------------------------------------------------------

CHECKSUMS = [
    ("ignores the checksum field", {"a": 1}, {"a": 1, "checksum": "whatever"}, True),
    ("key order does not matter", {"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
    ("a value changes it", {"a": 1}, {"a": 2}, False),
    ("list order changes it", {"a": [1, 2]}, {"a": [2, 1]}, False),
    ("a new key changes it", {"a": 1}, {"a": 1, "b": None}, False),
]


@pytest.mark.parametrize("left, right, same", [c[1:] for c in CHECKSUMS], ids=[c[0] for c in CHECKSUMS])
def test_checksum(left, right, same):
    assert (ws.checksum(left) == ws.checksum(right)) is same
    assert len(ws.checksum(left)) == 64


def test_checksum_is_sha256_of_compact_sorted_json():
    body = {"b": 1, "a": "x"}
    assert ws.checksum(dict(body, checksum="x")) == hashlib.sha256(b'{"a":"x","b":1}').hexdigest()


# --- format 1 (release 0.2.0) ---------------------------------------------------------------------------------


def format1(ident="init", netns=None, dyndbg=None, **extra):
    """A snapshot as conntrack-debug-revert of release 0.2.0 wrote it (save_snapshot, FORMAT = 1)."""
    data = {
        "format": 1, "id": ident, "netns": netns, "created": 1795766400.25, "created_monotonic": 5123.5,
        "updated": 1795766400.25, "deadline": 1795767300.25, "confirmed": True,
        "keys": {"net.netfilter.nf_conntrack_log_invalid": {"original": "0", "applied": "255"},
                 "net.netfilter.nf_log.2": {"original": "NONE", "applied": "nf_log_syslog"}},
        "dyndbg": dyndbg if dyndbg is not None else [],
        "stats_baseline": {"invalid": 3}, "scheduler": {"kind": "none"},
    }
    data.update(extra)
    data["checksum"] = ws.checksum(data)
    return data


TCP_RECORD_1 = {"file": "net/netfilter/nf_conntrack_proto_tcp.c", "line": 1020, "module": "nf_conntrack",
                "func": "nf_conntrack_tcp_packet", "original": "_", "applied": "p"}

UPGRADES = [
    ("connection's namespace", "init", None, {"spec": None, "path": None, "dev": None, "ino": None}),
    ("name under /run/netns", "netns-blue", "blue", {"spec": "blue", "path": "/run/netns/blue", "dev": None, "ino": None}),
    ("path", PATH_HASH, "/proc/4242/ns/net",
     {"spec": "/proc/4242/ns/net", "path": "/proc/4242/ns/net", "dev": None, "ino": None}),
]


@pytest.fixture
def clocks(monkeypatch):
    """The wall clock and CLOCK_BOOTTIME at fixed, unrelated values: an upgrade carries over only what remains."""
    monkeypatch.setattr(ws.time, "time", lambda: 1795766700.25)
    monkeypatch.setattr(ws, "boot_now", lambda: 5000.0)


@pytest.mark.parametrize("ident, spec, netns", [c[1:] for c in UPGRADES], ids=[c[0] for c in UPGRADES])
def test_upgrade_format1_netns(clocks, ident, spec, netns):
    old = format1(ident, spec)
    new = ws.upgrade(old)
    assert new["format"] == ws.FORMAT == 3
    assert new["upgraded_from"] == 1
    assert new["netns"] == netns
    assert new["keys"] == old["keys"]
    assert new["links"] == [], "an empty links marks it for migrate_legacy, which removes it"
    assert new["window"] == "format1-1795766400.25"
    # 600 s of the wall-clock deadline were left at the upgrade: the same 600 s on CLOCK_BOOTTIME.
    assert new["deadline_boot"] == 5600.0
    assert old["format"] == 1 and old["netns"] == spec, "upgrade works on a copy"


def test_upgrade_format2_carries_the_remaining_time_to_boottime(clocks):
    old = {"format": 2, "id": "netns-blue", "deadline": 1795766760.25, "links": ["init"]}
    new = ws.upgrade(old)
    assert new == dict(old, format=3, upgraded_from=2, deadline_boot=5060.0)
    assert old["format"] == 2 and "deadline_boot" not in old, "upgrade works on a copy"


def test_upgrade_format2_overdue_stays_overdue(clocks):
    assert ws.upgrade({"format": 2, "id": "init", "deadline": 1795766600.25})["deadline_boot"] == 4900.0


def test_upgrade_format1_dyndbg_records():
    new = ws.upgrade(format1(dyndbg=[TCP_RECORD_1, dict(TCP_RECORD_1, line="1014", original="p", applied="p")]))
    assert new["dyndbg"] == [
        {"filename": "net/netfilter/nf_conntrack_proto_tcp.c", "lineno": 1020, "module": "nf_conntrack",
         "function": "nf_conntrack_tcp_packet", "format": None, "class": None, "original": "_", "applied": "p"},
        {"filename": "net/netfilter/nf_conntrack_proto_tcp.c", "lineno": 1014, "module": "nf_conntrack",
         "function": "nf_conntrack_tcp_packet", "format": None, "class": None, "original": "p", "applied": "p"},
    ]


def test_upgrade_format1_flags_in_kernel_order():
    """0.2.0 printed flags in the order pmfltsd; the kernel (and the control file the revert compares with) pmfsltd."""
    new = ws.upgrade(format1(dyndbg=[dict(TCP_RECORD_1, original="pfl", applied="pflts")]))
    assert (new["dyndbg"][0]["original"], new["dyndbg"][0]["applied"]) == ("pfl", "pfslt")


def test_upgrade_format3_is_unchanged():
    data = {"format": 3, "id": "init", "deadline_boot": 1.0}
    assert ws.upgrade(data) is data


@pytest.mark.parametrize("version", [None, 0, 4, "1"])
def test_upgrade_refuses_unknown(version):
    with pytest.raises(ValueError):
        ws.upgrade({"format": version})


# --- load -----------------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    store = ws.Store(str(tmp_path / "state"))
    store.ensure()
    return store


def plant(store, ident, content, mode=0o600):
    path = store.path(ident)
    with open(path, "wb") as handle:
        handle.write(content if isinstance(content, bytes) else json.dumps(content).encode())
    os.chmod(path, mode)
    return path


def format2(ident="init", **extra):
    data = {"format": 2, "id": ident, "netns": {"spec": None, "path": "/proc/self/ns/net", "dev": 4, "ino": 4026531840},
            "created": 1.0, "created_monotonic": 1.0, "deadline": 2.0, "keys": {}, "dyndbg": [], "links": [],
            "window": "w1"}
    data.update(extra)
    data["checksum"] = ws.checksum(data)
    return data


def format3(ident="init", **extra):
    data = {"format": 3, "id": ident, "netns": {"spec": None, "path": "/proc/self/ns/net", "dev": 4, "ino": 4026531840},
            "created": 1.0, "created_monotonic": 1.0, "deadline": 2.0, "deadline_boot": 3.0, "keys": {}, "dyndbg": [],
            "window": "w1"}
    data.update(extra)
    data["checksum"] = ws.checksum(data)
    return data


def test_load_missing_is_none(store):
    assert store.load("init") is None


def test_save_then_load(store):
    data = format3()
    del data["checksum"]
    store.save(dict(data))
    assert store.load("init") == dict(data, checksum=ws.checksum(data))
    assert stat.S_IMODE(os.stat(store.path("init")).st_mode) == 0o600
    assert store.ids() == ["init"]


def test_load_upgrades_format1_file(store):
    plant(store, "netns-blue", format1("netns-blue", "blue", dyndbg=[TCP_RECORD_1]))
    data = store.load("netns-blue")
    assert data["format"] == 3 and data["upgraded_from"] == 1 and "deadline_boot" in data
    assert data["netns"]["path"] == "/run/netns/blue"
    store.save(data)
    with open(store.path("netns-blue"), encoding="utf-8") as handle:
        assert json.load(handle)["format"] == 3, "saving rewrites the file in the current format"
    assert store.load("netns-blue")["dyndbg"] == data["dyndbg"]


REFUSED = [
    ("format 4 names the newer release", lambda: format3(format=4, written_by="conntrack-debug-window 0.5.0"),
     0o600, r"has format 4, written by a newer release of netfilter.conntrack \(conntrack-debug-window 0.5.0\);"
            r" this program reads formats 1-3 and will not guess"),
    ("format 99 without written_by", lambda: format2(format=99), 0o600, r"newer release of netfilter.conntrack \(unknown\)"),
    ("format 0", lambda: format2(format=0), 0o600, "has an unknown format"),
    ("format as a string", lambda: format2(format="2"), 0o600, "has an unknown format"),
    ("no format", lambda: {k: v for k, v in format2().items() if k != "format"}, 0o600, "has an unknown format"),
    ("truncated JSON", lambda: json.dumps(format2()).encode()[:40], 0o600, "is corrupted or truncated"),
    ("empty file", lambda: b"", 0o600, "is corrupted or truncated"),
    ("not UTF-8", lambda: b"\xff\xfe{}", 0o600, "is corrupted or truncated"),
    ("a JSON list", lambda: [1, 2], 0o600, "is not a snapshot of init"),
    ("another id", lambda: format2("netns-blue"), 0o600, "is not a snapshot of init"),
    ("edited by hand", lambda: dict(format2(), deadline=9e9), 0o600, "fails its checksum"),
    ("no checksum", lambda: {k: v for k, v in format2().items() if k != "checksum"}, 0o600, "fails its checksum"),
    ("group-readable", format2, 0o640, "is not a 0600 regular file owned by this user"),
    ("world-writable", format2, 0o602, "is not a 0600 regular file owned by this user"),
]


@pytest.mark.parametrize("content, mode, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_load_refuses(store, content, mode, message):
    plant(store, "init", content(), mode)
    with pytest.raises(ConntrackModuleError, match=message) as exc:
        store.load("init", program="/usr/local/libexec/x.pyz")
    if "newer release" not in message:
        assert "discard --id init" in exc.value.msg, "every other refusal tells how to recover"


def test_load_refuses_symlink(store, tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps(format2()))
    os.symlink(str(target), store.path("init"))
    with pytest.raises(ConntrackModuleError, match="is a symlink: refusing to follow it"):
        store.load("init")


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_load_refuses_other_file_types(store, kind):
    """Refused with the recovery hint (not EISDIR, and a FIFO does not block the open)."""
    if kind == "directory":
        os.mkdir(store.path("init"), 0o700)
    else:
        os.mkfifo(store.path("init"), 0o600)
    before = open_fds()
    with pytest.raises(ConntrackModuleError, match="not a 0600 regular file.*discard --id init"):
        store.load("init")
    assert open_fds() == before


def test_load_reads_at_most_the_limit(store, monkeypatch):
    monkeypatch.setattr(ws, "MAX_SNAPSHOT_BYTES", 64)
    plant(store, "init", format2(padding="x" * 200))
    with pytest.raises(ConntrackModuleError, match="corrupted or truncated"):
        store.load("init")


# --- save: atomic, nothing left behind on failure -------------------------------------------------------------


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("where", ["fsync", "rename"])
def test_save_full_filesystem_leaves_nothing(store, monkeypatch, where):
    monkeypatch.setattr(ws.os, where, enospc)
    with pytest.raises(OSError) as exc:
        store.save(format2())
    assert exc.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert os.listdir(store.directory) == []
    assert store.load("init") is None


def test_save_failure_keeps_the_previous_snapshot(store, monkeypatch):
    store.save(format2(deadline=100.0))
    before = open(store.path("init"), "rb").read()
    monkeypatch.setattr(ws.os, "fsync", enospc)
    with pytest.raises(OSError):
        store.save(format2(deadline=200.0))
    monkeypatch.undo()
    assert open(store.path("init"), "rb").read() == before
    assert store.load("init")["deadline"] == 100.0
    assert os.listdir(store.directory) == ["init.json"]


def test_save_does_not_follow_a_planted_temporary_symlink(store, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(str(victim), f"{store.path('init')}.{os.getpid()}.tmp")
    with pytest.raises(OSError):
        store.save(format2())
    assert victim.read_text() == "keep"


# --- directory ------------------------------------------------------------------------------------------------


def test_ensure_creates_0700_and_tightens(tmp_path):
    store = ws.Store(str(tmp_path / "state"))
    assert store.ensure(create=False) is False
    assert not os.path.exists(store.directory)
    assert store.ensure() is True
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700
    os.chmod(store.directory, 0o755)
    store.ensure()
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o700


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_ensure_refuses_planted(tmp_path, kind):
    path = tmp_path / "state"
    if kind == "symlink":
        (tmp_path / "real").mkdir(mode=0o700)
        os.symlink(str(tmp_path / "real"), str(path))
    else:
        path.write_text("")
    with pytest.raises(ConntrackModuleError, match="is not a directory"):
        ws.Store(str(path)).ensure()


def test_ids_and_remove_if_empty(store):
    for ident in ("netns-b", "init", PATH_HASH):
        store.save(format2(ident))
    for name in ("lock", "init.pid", "notes.json", "init.json.123.tmp"):
        open(os.path.join(store.directory, name), "w").close()
    assert store.ids() == sorted(["init", "netns-b", PATH_HASH])
    store.remove_if_empty()
    assert os.path.isdir(store.directory)
    for name in os.listdir(store.directory):
        if name != "lock":
            os.unlink(os.path.join(store.directory, name))
    store.remove("init")   # already gone: no error
    store.remove_if_empty()
    assert not os.path.exists(store.directory)
    assert store.ids() == []


def test_load_upgrades_format2_file(store, clocks):
    plant(store, "netns-blue", format2("netns-blue", deadline=1795766730.25, links=["init"]))
    data = store.load("netns-blue")
    assert (data["format"], data["upgraded_from"], data["deadline_boot"]) == (3, 2, 5030.0)
    assert data["links"] == ["init"], "the program moves the host-wide values under the lock, not load"


def test_windows_are_every_snapshot_but_the_shared_record(store):
    assert ws.check_id(ws.SHARED_ID) == "shared"
    for ident in ("netns-b", "init", ws.SHARED_ID):
        store.save(format3(ident))
    assert store.ids() == ["init", "netns-b", "shared"]
    assert store.windows() == ["init", "netns-b"]


def test_remaining_seconds_is_measured_on_boottime(monkeypatch):
    monkeypatch.setattr(ws, "boot_now", lambda: 100.0)
    monkeypatch.setattr(ws.time, "time", lambda: 9e9)
    assert ws.remaining_seconds({"deadline_boot": 160.0, "deadline": 1.0}) == 60.0
    assert ws.remaining_seconds({"deadline_boot": 160.0}, now_boot=170.0) == -10.0


def test_boot_now_is_clock_boottime_and_ignores_the_wall_clock(monkeypatch):
    before = ws.boot_now()
    monkeypatch.setattr(ws.time, "time", lambda: 0.0)
    after = ws.boot_now()
    assert 0 <= after - before < 5
    assert abs(after - ws.time.clock_gettime(ws.time.CLOCK_BOOTTIME)) < 5


def test_pid_files_of_the_watchers(store):
    store.write_pid("watcher", 11)
    store.write_pid("watcher-partner", 12)
    assert (store.read_pid("watcher"), store.read_pid("watcher-partner")) == (11, 12)
    assert sorted(os.listdir(store.directory)) == ["watcher-partner.pid", "watcher.pid"]
    with pytest.raises(ConntrackModuleError, match="is not a snapshot id"):
        store.pid_path("../watcher")


def test_pid_files(store):
    assert store.read_pid("init") is None
    store.write_pid("init", 4242)
    assert store.read_pid("init") == 4242
    store.remove_pid("init")
    store.remove_pid("init")
    assert store.read_pid("init") is None


# --- lock -----------------------------------------------------------------------------------------------------


@pytest.fixture
def holder(store):
    """Another operation holding the lock (another open file description, as another process would have)."""
    store.ensure()
    fd = os.open(os.path.join(store.directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    state = {"fd": fd}
    yield state
    if state["fd"] is not None:
        os.close(state["fd"])


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_lock_is_exclusive_and_released(store):
    with store.lock(timeout=1):
        fd = os.open(os.path.join(store.directory, "lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    with store.lock(timeout=0):
        pass


def test_a_lock_waited_for_while_its_holder_removed_the_directory_is_taken_again(store, holder):
    """The holder empties the state directory and removes it with its lock file (remove_if_empty) while another
    process waits on that file: the waiter must not go on under a lock that guards nothing, in a directory gone."""
    taken = []

    def sleep(_seconds):
        if not taken:  # the holder finishes: removes the empty directory, then lets go of its flock
            store.remove_if_empty()
            os.close(holder["fd"])
            holder["fd"] = None
        taken.append(1)

    with ws.Lock(store, 5.0, sleep=sleep):
        lock = os.path.join(store.directory, "lock")
        assert os.path.isfile(lock), "the directory and its lock were made again"
        fd = os.open(lock, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        ws.write_atomically(os.path.join(store.directory, "shared.json"), b"{}", 0o600)


def test_lock_timeout_raises_busy(store, holder):
    sleeps = []
    before = open_fds()
    with pytest.raises(ws.Busy, match="holds .*lock for more than 0s: retry when it has finished"):
        with ws.Lock(store, 0.0, sleep=sleeps.append):
            pass
    assert open_fds() == before, "the lock file is closed when giving up"
    assert issubclass(ws.Busy, ConntrackModuleError)


def test_lock_keep_waiting_false_gives_up(store, holder):
    asked = []
    with pytest.raises(ws.Busy):
        with ws.Lock(store, 0.0, keep_waiting=lambda: asked.append(1) or False, sleep=lambda _s: None):
            pass
    assert asked == [1]


def test_lock_keep_waiting_extends_the_wait(store, holder):
    """The automatic revert waits timeout after timeout while its snapshot exists, and gets the lock in the end."""
    asked = []

    def keep_waiting():
        asked.append(1)
        if len(asked) == 3:
            os.close(holder["fd"])   # the other operation finishes
            holder["fd"] = None
        return True

    with ws.Lock(store, 0.0, keep_waiting=keep_waiting, sleep=lambda _s: None) as lock:
        assert lock._fd is not None
    assert len(asked) == 3
