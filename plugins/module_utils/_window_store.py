# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The debug window's state on the host: snapshots, their format versions, the lock.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

State lives in a directory on tmpfs (``/run``), so a reboot clears the runtime values and the
snapshots together. One snapshot per window, that is per network namespace, named by how the namespace
was given (``init``, ``netns-NAME``, ``path-HASH``) and bound to *which* namespace it is by the
identity recorded in it. The host-wide values that windows of several namespaces need at once
(``nf_log_all_netns``, the dynamic-debug sites) live in one more record, ``shared``, with the windows
that hold them: they are restored when the last holder ends, and no window's deadline moves for them.
Every change happens under an flock on the directory's lock file; a record is written to a temporary
file opened with ``O_EXCL|O_NOFOLLOW``, synced, and renamed into place.

Deadlines are kept on ``CLOCK_BOOTTIME`` (``deadline_boot``), which no wall-clock step moves; the
wall-clock ``deadline`` is only for display.

Snapshot formats, oldest first:

* 1 (release 0.2.0): ``netns`` is the spec string; dynamic-debug records are ``{file, line, module,
  func, original, applied}`` with flags in 0.2.0's order; no namespace identity, no window token.
* 2 (development builds of 0.3.0): ``netns`` is ``{spec, path, dev, ino}``; dynamic-debug records name
  the whole site; a ``window`` token; ``links`` names the host snapshot holding the host-wide values.
* 3: as 2, with ``deadline_boot``, and the host-wide values in the ``shared`` record.

:func:`load` reads every format up to :data:`FORMAT` and returns format 3 (the host-wide values of
an older snapshot are moved to the ``shared`` record by the program, under the lock); a newer one is
refused with a message, never guessed at.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import stat
import time
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_model import canonical_flags
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import NETNS_NAME_RE as _NAME_RE, netns_path

# The host program's name: in its answers (program_version), in the snapshots it writes, and in messages.
PROGRAM_NAME = "conntrack-debug-window"
STATE_DIR = "/run/netfilter-conntrack"
FORMAT = 3
READABLE_FORMATS = (1, 2, 3)
SHARED_ID = "shared"
LOCK_TIMEOUT = 60.0
MAX_SNAPSHOT_BYTES = 1 << 20

_ID_RE = re.compile(r"^(init|shared|netns-[A-Za-z0-9_.@:+-]{1,255}|path-[0-9a-f]{16})$")
_PID_NAME_RE = re.compile(r"^[a-z]+(-[a-z0-9]+)?$")


class Busy(ConntrackModuleError):
    """Another operation holds the lock for longer than the caller was willing to wait."""


def snapshot_id(spec: str | None) -> str:
    """A file-name-safe id for a namespace spec: init, netns-NAME or path-HASH."""
    if spec in (None, ""):
        return "init"
    if spec.startswith("/"):
        return "path-" + hashlib.sha256(spec.encode()).hexdigest()[:16]
    if spec in (".", "..") or not _NAME_RE.match(spec):
        raise ConntrackModuleError(
            f"netns {spec!r} is not a valid namespace name: use letters, digits and ._@:+- or an absolute path"
        )
    return "netns-" + spec


def check_id(ident: str) -> str:
    if not isinstance(ident, str) or not _ID_RE.match(ident):
        raise ConntrackModuleError(f"{ident!r} is not a snapshot id (init, netns-NAME or path-HASH)")
    return ident


def boot_now() -> float:
    """Seconds on CLOCK_BOOTTIME: no wall-clock step (NTP, a resumed VM) moves it, and it counts suspend."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def monotonic_now() -> float:
    """CLOCK_MONOTONIC, the clock of the kernel log's timestamps (collect reads the log since enable by it)."""
    return round(time.clock_gettime(time.CLOCK_MONOTONIC), 3)


def remaining_seconds(data: dict, now_boot: float | None = None) -> float:
    return data["deadline_boot"] - (boot_now() if now_boot is None else now_boot)


def checksum(data: dict) -> str:
    body = {k: v for k, v in data.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def upgrade(data: dict) -> dict:
    """Turn a snapshot of any readable format into format 3 (in memory; the file is rewritten on save).

    The deadline of an older format was a wall-clock time: what remains of it now is carried over to
    CLOCK_BOOTTIME once, here.
    """
    version = data.get("format")
    if version == FORMAT:
        return data
    if version == 2:
        upgraded = dict(data, format=FORMAT, upgraded_from=data.get("upgraded_from", 2))
        if "deadline" in data and data.get("id") != SHARED_ID:
            upgraded["deadline_boot"] = boot_now() + (data["deadline"] - time.time())
        return upgraded
    if version != 1:
        raise ValueError(f"format {version!r}")
    spec = data.get("netns")
    upgraded = dict(data)
    upgraded["format"] = FORMAT
    upgraded["deadline_boot"] = boot_now() + (data["deadline"] - time.time())
    upgraded["netns"] = {"spec": spec, "path": netns_path(spec) if spec else None, "dev": None, "ino": None}
    upgraded["dyndbg"] = [
        # 0.2.0 recorded module and func too, and printed flags in the order pmfltsd where the kernel's control
        # file (which revert compares them with) says pmfsltd.
        {"filename": record["file"], "lineno": int(record["line"]), "module": record.get("module"),
         "function": record.get("func"), "format": None, "class": None,
         "original": canonical_flags(record["original"]), "applied": canonical_flags(record["applied"])}
        for record in data.get("dyndbg") or []
    ]
    upgraded["window"] = "format1-" + str(data.get("created"))
    upgraded["links"] = []
    upgraded["upgraded_from"] = 1
    return upgraded


def write_atomically(path: str, payload: bytes, mode: int) -> None:
    """Write path through a synced temporary file in its directory, renamed into place.

    On any failure (a full filesystem) neither a partial file nor the temporary one stays.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class Store:
    """The state directory: snapshots by id, pid files of watchers, and the lock."""

    def __init__(self, directory: str = STATE_DIR) -> None:
        self.directory = directory

    # ------------------------------------------------------------------ directory and lock

    def ensure(self, create: bool = True) -> bool:
        """Check (and create) the directory; False when it does not exist and create is False."""
        try:
            info = os.lstat(self.directory)
        except FileNotFoundError:
            if not create:
                return False
            try:
                os.mkdir(self.directory, 0o700)
            except FileExistsError:
                pass  # a parallel enable made it first; the checks below apply to it all the same
            info = os.lstat(self.directory)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise ConntrackModuleError(
                f"{self.directory} is not a directory (a symlink or file was planted there): remove it and retry")
        if info.st_uid != os.geteuid():
            raise ConntrackModuleError(
                f"{self.directory} is owned by uid {info.st_uid}, not by uid {os.geteuid()}: refusing to use it")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(self.directory, 0o700)
        return True

    def lock(self, timeout: float = LOCK_TIMEOUT, keep_waiting: t.Callable[[], bool] | None = None) -> Lock:
        return Lock(self, timeout, keep_waiting)

    # ------------------------------------------------------------------ snapshots

    def path(self, ident: str) -> str:
        return os.path.join(self.directory, check_id(ident) + ".json")

    def recovery_hint(self, ident: str, program: str) -> str:
        return (f"Nothing was changed. Inspect {self.path(ident)}, set the values back by hand if needed "
                f"(sysctl net.netfilter...), then remove the snapshot with: {program} discard --id {ident}")

    def load(self, ident: str, program: str = PROGRAM_NAME) -> dict | None:
        """The snapshot as format 2; None when there is none. Refuses one that is unsafe, damaged or newer."""
        path = self.path(ident)
        try:
            # O_NONBLOCK: a FIFO planted here is refused below instead of blocking the open (no effect on files).
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ConntrackModuleError(
                    f"{path} is a symlink: refusing to follow it. {self.recovery_hint(ident, program)}") from exc
            raise
        # Checked on the descriptor before wrapping it: os.fdopen itself fails on a directory (EISDIR).
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
            os.close(fd)
            raise ConntrackModuleError(
                f"{path} is not a 0600 regular file owned by this user. {self.recovery_hint(ident, program)}")
        with os.fdopen(fd, "rb") as handle:
            raw = handle.read(MAX_SNAPSHOT_BYTES)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ConntrackModuleError(
                f"snapshot {path} is corrupted or truncated ({exc}). {self.recovery_hint(ident, program)}") from None
        if not isinstance(data, dict) or data.get("id") != ident:
            raise ConntrackModuleError(f"snapshot {path} is not a snapshot of {ident}. {self.recovery_hint(ident, program)}")
        version = data.get("format")
        if isinstance(version, int) and version > FORMAT:
            raise ConntrackModuleError(
                f"snapshot {path} has format {version}, written by a newer release of netfilter.conntrack"
                f" ({data.get('written_by', 'unknown')}); this program reads formats"
                f" {READABLE_FORMATS[0]}-{READABLE_FORMATS[-1]} and will not guess: revert with the newer release")
        if version not in READABLE_FORMATS:
            raise ConntrackModuleError(f"snapshot {path} has an unknown format. {self.recovery_hint(ident, program)}")
        if data.get("checksum") != checksum(data):
            raise ConntrackModuleError(
                f"snapshot {path} fails its checksum (modified or damaged). {self.recovery_hint(ident, program)}")
        return upgrade(data)

    def save(self, data: dict) -> None:
        """Write atomically; on any failure (a full filesystem) neither a partial file nor the temporary one stays."""
        data["format"] = FORMAT
        data["checksum"] = checksum(data)
        path = self.path(data["id"])
        write_atomically(path, (json.dumps(data, sort_keys=True, indent=1) + "\n").encode("utf-8"), 0o600)

    def remove(self, ident: str) -> None:
        try:
            os.unlink(self.path(ident))
        except FileNotFoundError:
            pass

    def exists(self, ident: str) -> bool:
        return os.path.lexists(self.path(ident))

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(name[:-5] for name in names if name.endswith(".json") and _ID_RE.match(name[:-5]))

    def windows(self) -> list[str]:
        """The ids of the windows (every snapshot but the shared record)."""
        return [ident for ident in self.ids() if ident != SHARED_ID]

    # ------------------------------------------------------------------ pid files (supervisors, 0.2.0's watchers)

    def pid_path(self, ident: str) -> str:
        if isinstance(ident, str) and _PID_NAME_RE.match(ident) and not _ID_RE.match(ident):
            return os.path.join(self.directory, ident + ".pid")
        return os.path.join(self.directory, check_id(ident) + ".pid")

    def write_pid(self, ident: str, pid: int) -> None:
        write_atomically(self.pid_path(ident), f"{pid}\n".encode("ascii"), 0o600)

    def read_pid(self, ident: str) -> int | None:
        try:
            with open(self.pid_path(ident), encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def remove_pid(self, ident: str) -> None:
        try:
            os.unlink(self.pid_path(ident))
        except FileNotFoundError:
            pass

    def remove_if_empty(self) -> None:
        """Remove the lock file and the directory once no snapshot (nor a pid file) is left: a clean host after revert."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        if names == ["lock"]:
            try:
                os.unlink(os.path.join(self.directory, "lock"))
                os.rmdir(self.directory)
            except OSError:
                pass


class Lock:
    """An exclusive flock on the state directory's lock file, waited for up to ``timeout`` seconds.

    With ``keep_waiting``, a caller that must not give up (the automatic revert) waits another
    ``timeout`` each time it returns True.
    """

    def __init__(self, store: Store, timeout: float, keep_waiting: t.Callable[[], bool] | None = None,
                 sleep: t.Callable[[float], None] = time.sleep) -> None:
        self._store = store
        self._timeout = timeout
        self._keep_waiting = keep_waiting
        self._sleep = sleep
        self._fd: int | None = None

    def __enter__(self) -> Lock:
        deadline = time.monotonic() + self._timeout
        while True:
            self._store.ensure()
            path = os.path.join(self._store.directory, "lock")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or not stat.S_ISREG(info.st_mode):
                os.close(fd)
                raise ConntrackModuleError(f"{path} is not a regular file owned by this user: refusing to use it")
            deadline = self._wait(fd, path, deadline)
            if self._names(path, info):
                self._fd = fd
                return self
            # The holder found the directory empty and removed it with its lock file while this one waited:
            # that flock guards nothing any more, so the directory is made again and its new lock taken.
            os.close(fd)

    def _wait(self, fd: int, path: str, deadline: float) -> float:
        """flock fd, waiting until deadline (extended while keep_waiting says so); returns the deadline."""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return deadline
            except BlockingIOError:
                if time.monotonic() >= deadline and self._keep_waiting is not None and self._keep_waiting():
                    deadline = time.monotonic() + self._timeout
                elif time.monotonic() >= deadline:
                    os.close(fd)
                    raise Busy(f"another conntrack debug operation holds {path} for more than {self._timeout:.0f}s:"
                               " retry when it has finished") from None
                self._sleep(0.1)

    @staticmethod
    def _names(path: str, info: os.stat_result) -> bool:
        """Whether path is still the file that was locked."""
        try:
            now = os.lstat(path)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino)

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


__all__ = ("FORMAT", "LOCK_TIMEOUT", "PROGRAM_NAME", "READABLE_FORMATS", "SHARED_ID", "STATE_DIR", "Busy", "Lock", "Store", "boot_now",
           "check_id", "monotonic_now", "checksum", "remaining_seconds", "snapshot_id", "upgrade", "write_atomically")
