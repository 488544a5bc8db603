# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The dynamic debug control file on a host: finding, reading and writing it, and dynamic_debug_site's work.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The sites and the matching are in ``_dynamic_debug_model``, the query text in ``_dynamic_debug_query``:
:func:`parse_site` turns the module's options into a checked query without touching anything, and
:func:`apply_site` predicts which sites it changes, writes it once and reads the result back.
"""

from __future__ import annotations

import errno
import os
import re
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_model import (
    Query,
    apply_flags,
    escape_control_format,
    parse_control,
    parse_flags,
    site_matches,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_query import build_query, make_query, match_spec_text
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

PROC_CONTROL = "/proc/dynamic_debug/control"
DEBUGFS_DEFAULT_MOUNT = "/sys/kernel/debug"

# --------------------------------------------------------------------------------------------
# Locating, reading and writing the control file
# --------------------------------------------------------------------------------------------


def debugfs_mounts(mounts_text: str) -> list:
    """Mount points of debugfs in a ``/proc/self/mounts`` text (octal escapes undone)."""
    points = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "debugfs":
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]))
    return points


def kernel_has_dynamic_debug(kallsyms_lines: t.Iterable) -> t.Optional[bool]:
    """Look for the control file's write handler in ``/proc/kallsyms`` lines; None when unknowable."""
    seen_any = False
    for line in kallsyms_lines:
        seen_any = True
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("ddebug_proc_write", "ddebug_exec_queries"):
            return True
    return False if seen_any else None


def _read_text(path: str) -> t.Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except OSError:
        return None


def _kallsyms_says(path: str) -> t.Optional[bool]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return kernel_has_dynamic_debug(handle)
    except OSError:
        return None


def locate_control(mounts_text: str, exists: t.Callable = os.path.exists, has_ddebug: t.Optional[bool] = None,
                   proc_control: str = PROC_CONTROL) -> tuple:
    """Find the control file.  Returns ``(path, None)`` or ``(None, reason)``.

    ``reason`` is ``"no-dynamic-debug"`` or ``"debugfs-not-mounted"``.
    """
    if exists(proc_control):
        return proc_control, None
    mounts = debugfs_mounts(mounts_text)
    for point in mounts:
        candidate = os.path.join(point, "dynamic_debug", "control")
        if exists(candidate):
            return candidate, None
    if mounts or has_ddebug is False:
        return None, "no-dynamic-debug"
    return None, "debugfs-not-mounted"


def locate_control_here(proc: str = "/proc") -> tuple:
    """locate_control on this host (``proc``: where its /proc is): without a debugfs mount, /proc/kallsyms tells
    whether the kernel has dynamic debug at all, so an unmounted debugfs is not mistaken for a control file that
    might exist."""
    path, reason = locate_control(_read_text(os.path.join(proc, "self", "mounts")) or "",
                                  proc_control=os.path.join(proc, "dynamic_debug", "control"))
    if reason == "debugfs-not-mounted" and _kallsyms_says(os.path.join(proc, "kallsyms")) is False:
        reason = "no-dynamic-debug"
    return path, reason


NO_DYNAMIC_DEBUG_MSG = (
    "this kernel has no dynamic debug (CONFIG_DYNAMIC_DEBUG is not set): neither "
    + PROC_CONTROL
    + " nor <debugfs>/dynamic_debug/control exists"
)


def find_control(mount_debugfs: t.Callable = None) -> tuple:
    """Locate the control file on this host; returns ``(path, mounted_debugfs_path_or_None)``.

    ``mount_debugfs`` is called (with the mount point) when only an unmounted debugfs could hold the
    file; when it is ``None`` that situation is an error.
    """
    path, reason = locate_control_here()
    if path is not None:
        return path, None
    if reason == "no-dynamic-debug":
        raise ConntrackModuleError(NO_DYNAMIC_DEBUG_MSG, reason=reason)
    if mount_debugfs is None:
        raise ConntrackModuleError(
            f"debugfs is not mounted and {PROC_CONTROL} does not exist: this kernel only offers dynamic debug in"
            f" debugfs; set mount_debugfs=true or run 'mount -t debugfs none {DEBUGFS_DEFAULT_MOUNT}'",
            reason="debugfs-not-mounted",
        )
    mount_debugfs(DEBUGFS_DEFAULT_MOUNT)
    candidate = os.path.join(DEBUGFS_DEFAULT_MOUNT, "dynamic_debug", "control")
    if not os.path.exists(candidate):
        raise ConntrackModuleError(
            NO_DYNAMIC_DEBUG_MSG + f" (debugfs is now mounted at {DEBUGFS_DEFAULT_MOUNT})", reason="no-dynamic-debug"
        )
    return candidate, DEBUGFS_DEFAULT_MOUNT


def read_control(path: str) -> list:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise ConntrackModuleError(f"{path} does not exist (is this the dynamic debug control file?)") from exc
    except PermissionError as exc:
        raise ConntrackModuleError(f"cannot read {path}: permission denied (dynamic debug needs root)") from exc
    except OSError as exc:
        raise ConntrackModuleError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_control(text)
    except ValueError as exc:
        raise ConntrackModuleError(f"{path} does not look like a dynamic debug control file: {exc}") from exc


def write_control(path: str, query: str) -> None:
    """Write ``query`` in one ``write()``, as the kernel parses per write call."""
    data = query.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _write_error(path, query, exc) from exc
    try:
        written = os.write(fd, data)
    except OSError as exc:
        raise _write_error(path, query, exc) from exc
    finally:
        os.close(fd)
    if written != len(data):
        raise ConntrackModuleError(f"short write to {path}: {written} of {len(data)} bytes of {query!r}", query=query)


def _write_error(path: str, query: str, exc: OSError) -> ConntrackModuleError:
    if exc.errno == errno.EINVAL:
        return ConntrackModuleError(
            f"the kernel rejected the query {query!r} written to {path} (EINVAL); the kernel log (dmesg) says why,"
            " e.g. an unknown flag or class on this kernel",
            query=query,
        )
    if exc.errno in (errno.EPERM, errno.EACCES):
        return ConntrackModuleError(
            f"cannot write {path}: {exc.strerror} (dynamic debug needs root, and a locked-down kernel or a read-only"
            " /proc in a container refuses it)",
            query=query,
        )
    if exc.errno == errno.E2BIG:
        return ConntrackModuleError(f"the query {query!r} is too long for {path} (E2BIG)", query=query)
    return ConntrackModuleError(f"cannot write {query!r} to {path}: {exc.strerror}", query=query)


# The module states that write, and the control-file operation each writes.
OPERATIONS = {"enabled": "+", "disabled": "-", "exact": "="}
NEAR_MISS_LIMIT = 8
# dynamic_debug_site's option defaults, for callers that give only some options.
SITE_DEFAULTS = {"file": None, "func": None, "module": None, "format": None, "line": None, "class": None, "flags": "p",
                 "state": "enabled", "control_path": None, "mount_debugfs": False, "require_match": True}


class _WouldMount(Exception):
    pass


def site_result(site, flags_after: str) -> dict:
    restore = {"file": site.filename, "line": site.lineno, "func": site.function, "flags": site.flags, "state": "exact"}
    if site.class_name is not None:
        restore["class"] = site.class_name
    return {
        "filename": site.filename,
        "lineno": site.lineno,
        "module": site.module,
        "function": site.function,
        "format": escape_control_format(site.format),
        "class": site.class_name,
        "flags_before": site.flags,
        "flags_after": flags_after,
        "restore": restore,
    }


def no_match_message(query: Query, sites: list, path: str) -> str:
    modules = sorted({s.module for s in sites})
    msg = (
        f"no dynamic debug site matches {query.describe()}: searched {len(sites)} sites of {len(modules)} modules"
        f" in {path}"
    )
    if query.module is not None and not any(site_matches(Query(module=query.module), s._replace(class_name=None, class_id=None)) for s in sites):
        msg += f"; no site belongs to module {query.module} (is it loaded? try modprobe {query.module})"
    # Sites that match every criterion but one: usually a renamed function or a moved line.
    criteria = {
        "file": {"file": None},
        "func": {"func": None},
        "module": {"module": None},
        "format": {"format": None},
        "line": {"first_lineno": 0, "last_lineno": 0},
        "class": {"class_name": None},
    }
    for name, cleared in criteria.items():
        relaxed = query._replace(**cleared)
        if relaxed == query or relaxed == Query():
            continue
        near = [s for s in sites if site_matches(relaxed, s)]
        if near:
            shown = "; ".join(s.control_line() for s in near[:NEAR_MISS_LIMIT])
            more = f" (and {len(near) - NEAR_MISS_LIMIT} more)" if len(near) > NEAR_MISS_LIMIT else ""
            msg += f". Without the {name} criterion these match: {shown}{more}"
            break
    return msg


class SiteRequest(t.NamedTuple):
    """One dynamic_debug_site query, validated: what it selects, what it writes and where."""

    query: Query
    op: t.Optional[str]
    """The control-file operation; None for state=query (read only)."""
    flags: frozenset
    text: str
    """The exact text written (state=query: its match-specs)."""
    control_path: t.Optional[str]
    mount_debugfs: bool
    require_match: bool


def parse_site(options: dict) -> SiteRequest:
    """Validate dynamic_debug_site's options (missing ones take its defaults) and build the query, touching nothing."""
    params = dict(SITE_DEFAULTS, **{key: value for key, value in options.items() if value is not None})
    try:
        flags = parse_flags(params["flags"])
    except ValueError as exc:
        raise ConntrackModuleError(str(exc)) from exc
    line = params["line"]
    if line is not None and (isinstance(line, bool) or not isinstance(line, (int, str))):
        raise ConntrackModuleError(f"line must be a number or a range such as 100-200, not {line!r}")
    query = make_query(
        file=params["file"],
        func=params["func"],
        module=params["module"],
        format=params["format"],
        line=None if line is None else str(line),
        class_name=params["class"],
    )
    op = OPERATIONS.get(params["state"])
    text = match_spec_text(query) if op is None else build_query(query, op, flags)
    return SiteRequest(query, op, flags, text, params["control_path"], bool(params["mount_debugfs"]),
                       bool(params["require_match"]))


def _site_control(host, request: SiteRequest, result: dict) -> t.Optional[str]:
    """The control file to use; None in check mode when debugfs would have to be mounted first (result says so)."""
    if request.control_path is not None:
        return request.control_path

    def mounter(point: str) -> None:
        if host.check_mode:
            raise _WouldMount(point)
        binary = host.which("mount", ["/usr/bin", "/bin"])
        if binary is None:
            raise ConntrackModuleError("debugfs must be mounted but the mount command is not installed")
        argv = [binary, "-t", "debugfs", "debugfs", point]
        rc, out, err = host.run(argv)
        if rc != 0:
            raise ConntrackModuleError(
                f"cannot mount debugfs at {point}: {err.strip() or out.strip()}", rc=rc, stdout=out, stderr=err, cmd=argv
            )
        result["mounted_debugfs"] = point

    try:
        return host.kernel.find_control(mounter if request.mount_debugfs else None)[0]
    except _WouldMount as would:
        result.update(changed=True, control_path=None, mounted_debugfs=str(would))
        host.warn(f"debugfs would be mounted at {would}; the matching sites cannot be listed in check mode")
        return None


def _write_site(host, request: SiteRequest, path: str, sites: list, matched: list, wanted: list) -> None:
    """Write the query, and check that the kernel reads back what was predicted for every site."""
    host.kernel.write_control(path, request.text)
    after = {s.key: s for s in read_control(path)}
    wrong = []
    for site, want in zip(matched, wanted):
        now = after.get(site.key)
        if now is None:
            wrong.append(f"{site.filename}:{site.lineno} [{site.module}]{site.function} disappeared (module unloaded?)")
        elif now.flags != want:
            wrong.append(f"{site.filename}:{site.lineno} [{site.module}]{site.function} reads ={now.flags}, wanted ={want}")
    if wrong:
        raise ConntrackModuleError(
            f"wrote {request.text!r} to {path} but the kernel reads back: " + "; ".join(wrong),
            query=request.text,
            control_path=path,
        )
    matched_keys = {s.key for s in matched}
    surprises = [s for s in sites if s.key not in matched_keys and s.key in after and after[s.key].flags != s.flags]
    if surprises:
        host.warn(
            f"the query also changed {len(surprises)} site(s) this module did not predict (or something else changed"
            f" them meanwhile), e.g. {surprises[0].control_line()}"
        )


def apply_site(host, request: SiteRequest) -> dict:
    """Apply one parsed dynamic_debug_site query.

    Returns the module's result: changed, query, written, sites, control_path, mounted_debugfs, diff (diff mode).
    """
    result: dict = {"changed": False, "query": request.text, "written": False, "sites": []}
    path = _site_control(host, request, result)
    if path is None:
        return result
    result["control_path"] = path

    sites = read_control(path)
    matched = [s for s in sites if site_matches(request.query, s)]
    if not matched:
        if request.require_match:
            raise ConntrackModuleError(no_match_message(request.query, sites, path), query=request.text,
                                       control_path=path)
        return result

    op = request.op
    wanted = [apply_flags(s.flags, op, request.flags) if op else s.flags for s in matched]
    result["changed"] = any(s.flags != w for s, w in zip(matched, wanted))
    if result["changed"] and not host.check_mode:
        _write_site(host, request, path, sites, matched, wanted)
        result["written"] = True

    result["sites"] = [site_result(s, w) for s, w in zip(matched, wanted)]
    if host.diff:
        result["diff"] = {
            "before": "".join(s.control_line() + "\n" for s in matched),
            "after": "".join(s.control_line(w) + "\n" for s, w in zip(matched, wanted)),
        }
    return result


def set_site(host, options: dict) -> dict:
    """dynamic_debug_site: parse_site, then apply_site."""
    return apply_site(host, parse_site(options))


__all__ = (
    "DEBUGFS_DEFAULT_MOUNT",
    "NEAR_MISS_LIMIT",
    "NO_DYNAMIC_DEBUG_MSG",
    "OPERATIONS",
    "PROC_CONTROL",
    "SITE_DEFAULTS",
    "SiteRequest",
    "apply_site",
    "debugfs_mounts",
    "find_control",
    "kernel_has_dynamic_debug",
    "locate_control",
    "locate_control_here",
    "no_match_message",
    "parse_site",
    "read_control",
    "set_site",
    "site_result",
    "write_control",
)
