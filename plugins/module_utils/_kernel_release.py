# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kernel release as the plan and the facts read it, and the kernel changes they depend on.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import re
import typing as t

AUTOLOAD_SINCE = (6, 17)
UNCONFIRMED_GONE = (5, 19)
TCP_DEBUG_GONE = (5, 19)
TABLE_FULL_NETNS_SINCE = (6, 17)

# Kernels whose vendor backports netfilter changes: the upstream version number does not decide for them.
_BACKPORT_RE = (
    (re.compile(r"\.el(\d+)"), "Enterprise Linux {0} (RHEL, CentOS Stream, Rocky, Alma, Oracle)"),
    (re.compile(r"\.uek\b|uek"), "Oracle UEK"),
    (re.compile(r"\.amzn(\d*)"), "Amazon Linux"),
    (re.compile(r"-default$|\.g[0-9a-f]{7}-default"), "SUSE"),
)
_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")


def parse_release(release: str) -> dict[str, t.Any]:
    """The kernel release as the plan uses it: version, and whether a vendor's backports blur it."""
    match = _RELEASE_RE.match(release or "")
    version = (int(match.group(1)), int(match.group(2))) if match else None
    vendor = None
    for pattern, name in _BACKPORT_RE:
        found = pattern.search(release or "")
        if found:
            vendor = name.format(*found.groups()) if found.groups() else name
            break
    return {
        "release": release,
        "version": f"{version[0]}.{version[1]}" if version else None,
        "version_tuple": list(version) if version else None,
        "backports": vendor is not None,
        "vendor": vendor,
    }


def version_tuple(kernel: dict[str, t.Any]) -> list[int] | None:
    """``[major, minor]`` of a plan's kernel entry, which leaves the tuple out: parsed again from the release."""
    if kernel.get("version_tuple"):
        return kernel["version_tuple"]
    parsed = parse_release(kernel.get("release") or "")
    return parsed["version_tuple"]


def version_decides(kernel: dict[str, t.Any], since: tuple[int, int]) -> tuple[bool | None, str]:
    """Whether a change of ``since`` is in this kernel by its version: ``(answer, decided_by)``.

    A vendor kernel with backports (EL9's 5.14 carries 6.x netfilter code) gets ``(None, "unknown")``:
    the version number would claim what it cannot know.
    """
    if kernel.get("backports") or not kernel.get("version_tuple"):
        return None, "unknown"
    return tuple(kernel["version_tuple"]) >= since, "version"


def version_note(kernel: dict[str, t.Any], since: tuple[int, int], what: str) -> str:
    if kernel.get("backports"):
        return (f"{kernel['vendor']} kernel {kernel['release']}: its vendor backports netfilter changes, so version"
                f" {kernel['version']} does not tell whether {what} (upstream: since {since[0]}.{since[1]})")
    if not kernel.get("version_tuple"):
        return f"kernel release {kernel.get('release')!r} is not a version number: cannot tell whether {what}"
    return f"decided by the kernel version {kernel['version']} alone (upstream {since[0]}.{since[1]})"


__all__ = (
    "AUTOLOAD_SINCE",
    "TABLE_FULL_NETNS_SINCE",
    "TCP_DEBUG_GONE",
    "UNCONFIRMED_GONE",
    "parse_release",
    "version_decides",
    "version_note",
    "version_tuple",
)
