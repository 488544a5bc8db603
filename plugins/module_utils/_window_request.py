# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rules a debug window's request must meet, checked with the same code on the controller and on the host.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

import json
import math

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import OPERATIONS, build_query, make_query, parse_flags
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

# The longest window enable accepts: a debug window of weeks is already a forgotten one.
MAX_DURATION = 7 * 24 * 3600
SITE_FIELDS = ("file", "func", "module", "format", "line", "class", "flags", "state")


def check_duration(value: object) -> float:
    """A duration in seconds, 0 < duration <= MAX_DURATION; booleans and non-numbers are refused."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or math.isnan(number):
        raise ConntrackModuleError(f"duration {value!r} is not a number of seconds")
    value = number
    if value < 1 or value > MAX_DURATION:
        raise ConntrackModuleError(
            f"duration {value!r} is out of range: give 1 to {MAX_DURATION} seconds ({MAX_DURATION // 86400} days)")
    return float(value)


def site_query(text: str) -> tuple:
    """A --dyndbg-site JSON entry as (Query, op, flags), validated by the module's own query builder."""
    try:
        entry = json.loads(text)
    except ValueError:
        raise ConntrackModuleError(f"--dyndbg-site {text!r} is not JSON") from None
    return validate_site(entry)


def validate_site(entry: object) -> tuple:
    """The rules dynamic_debug_site applies to its options, for one dynamic_debug_sites entry."""
    if not isinstance(entry, dict):
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r} is not a dictionary")
    unknown = sorted(set(entry) - set(SITE_FIELDS) - {"require_match"})
    if unknown:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r}: unknown key(s) {', '.join(unknown)}")
    # Only a missing (or null) option takes the module's default: the module refuses an empty flags or state.
    state = "enabled" if entry.get("state") is None else entry["state"]
    if state not in OPERATIONS:
        raise ConntrackModuleError(f"dynamic_debug_sites entry {entry!r}: state must be one of {', '.join(OPERATIONS)}")
    line = entry.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, (int, str))):
        raise ConntrackModuleError(f"line must be a number or a range such as 100-200, not {line!r}")
    try:
        flags = parse_flags("p" if entry.get("flags") is None else entry["flags"])
    except ValueError as exc:
        raise ConntrackModuleError(str(exc)) from exc
    query = make_query(file=entry.get("file"), func=entry.get("func"), module=entry.get("module"),
                       format=entry.get("format"), line=None if line is None else str(line),
                       class_name=entry.get("class"))
    build_query(query, OPERATIONS[state], flags)
    return query, OPERATIONS[state], flags


__all__ = ("MAX_DURATION", "SITE_FIELDS", "check_duration", "site_query", "validate_site")
