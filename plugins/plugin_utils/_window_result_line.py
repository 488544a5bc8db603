# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One readable line of what enable or revert did on a host (the filter conntrack_window_line).

Note that this plugin util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins!
"""

from __future__ import annotations

import typing as t

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._fleet_report import (
    as_dict as _dict, as_list as _list, utc_text as _utc)


def _short(key: str) -> str:
    return str(key).replace("net.netfilter.", "")


def window_line(result: t.Any, host: str = "") -> str:
    """One readable line of what enable or revert did on a host, from conntrack_debug_window's result."""
    result = _dict(result)
    prefix = f"{host}: " if host else ""
    namespaces = _dict(result.get("namespaces"))
    if result.get("failed"):
        return f"{prefix}FAILED: {result.get('msg')}"
    if "deadline" in result or result.get("steps") is not None:
        return prefix + _enable_line(result, namespaces)
    return prefix + _revert_line(result, namespaces)


def _enable_line(result: dict, namespaces: dict) -> str:
    parts = []
    if result.get("deadline") is not None:
        schedulers = sorted({str(_dict(one.get("scheduler")).get("kind")) for one in namespaces.values()
                             if isinstance(one, dict) and _dict(one.get("scheduler")).get("kind")})
        extended = any(_dict(one).get("deadline_extended") for one in namespaces.values())
        rearmed = sorted(str(ident) for ident, one in namespaces.items() if _dict(one).get("rearmed"))
        parts.append(f"on until {_utc(result['deadline'])}" + (" (extended)" if extended else "")
                     + (f" by {', '.join(schedulers)}" if schedulers else ""))
        if rearmed:
            parts.append(f"automatic revert was NOT armed, armed again: {', '.join(rearmed)}")
    else:
        parts.append("check mode: nothing recorded, nothing scheduled")
    steps = [step for step in _list(result.get("steps")) if isinstance(step, dict)]

    def named(step: dict) -> str:
        return str(step.get("step")) + (f" [{step['netns']}]" if step.get("netns") else "")
    changed = [named(step) for step in steps if step.get("changed")]
    kept = [named(step) for step in steps if not step.get("changed")]
    parts.append("changed: " + (", ".join(changed) if changed else "nothing"))
    if kept:
        parts.append("already as wanted, left alone: " + ", ".join(kept))
    recorded = sum(len(_list(_dict(one).get("recorded"))) for one in namespaces.values())
    if namespaces:
        parts.append(f"{recorded} original value(s) recorded in {len(namespaces)} snapshot(s)")
    tools = _dict(result.get("tools"))
    if tools:
        done = "installed" if result.get("deadline") is not None else "would be installed"
        parts.append(f"{tools.get('name')} " + (done if tools.get("changed") else "already installed"))
    return "; ".join(parts)


def _revert_line(result: dict, namespaces: dict) -> str:
    restored, left, dropped, shared = [], [], [], []
    for ident, one in namespaces.items():
        one = _dict(one)
        where = "" if ident == "init" else f" [{ident}]"
        held = _dict(one.get("kept"))
        if held:
            values = ", ".join(_short(str(value)) for value in _list(held.get("values")))
            holders = ", ".join(str(name) for name in _list(held.get("for")))
            shared.append(f"{values} (still needed by {holders})")
        for key, change in _dict(one.get("restored")).items():
            change = _dict(change)
            restored.append(f"{_short(key)} {change.get('from')}->{change.get('to')}{where}")
        for key, kept in _dict(one.get("left")).items():
            left.append(f"{_short(key)}={_dict(kept).get('current')}{where}")
        if one.get("dropped"):
            dropped.append(str(ident))
    if not restored and not left and not dropped and not shared:
        return str(result.get("msg") or "nothing to revert")
    parts = ["restored: " + (", ".join(restored) if restored else "nothing")]
    if left:
        parts.append("left alone (changed by someone else): " + ", ".join(left))
    if shared:
        parts.append("kept for windows still open: " + "; ".join(shared))
    if dropped:
        parts.append("namespace gone, snapshot dropped: " + ", ".join(dropped))
    return "; ".join(parts)


__all__ = ("window_line",)
