# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the conntrack table of one namespace is made of: the evidence the table-full and stale-UDP verdicts show.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:class:`Makeup` folds decoded entries (``_ctnetlink.decode_ct_entry``) into a bounded summary: the share of
``[UNREPLIED]`` entries, the top protocols and destination ports, the remaining timeouts per protocol, and the
unreplied UDP entries grouped by destination (with the NAT target of their reply direction). Its memory grows with
the number of distinct destinations, never with the number of entries. :func:`read_makeup` streams the table of
the namespace the caller is in.
"""

from __future__ import annotations

import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._ctnetlink import (
    IPCTNL_MSG_CT_GET,
    NFNL_SUBSYS_CTNETLINK,
    CtnetlinkSocket,
    decode_ct_entry,
)

TOP = 5
PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre", 58: "icmpv6", 132: "sctp", 136: "udplite"}
# A flood of distinct destinations must not grow the summary without bound: past this many, new groups are
# counted as "other" (the top groups of a table that large are already among the first ones seen).
MAX_GROUPS = 4096


def protocol_name(number: int) -> str:
    return PROTOCOL_NAMES.get(number, str(number))


class Makeup:
    """Fold entries one at a time; :meth:`finish` gives the summary."""

    def __init__(self) -> None:
        self.listed = 0
        self.unreplied = 0
        self.dnat = 0
        self.protocols: dict[str, int] = {}
        self.ports: dict[tuple, list[int]] = {}
        self.timeouts: dict[str, list[int]] = {}
        self.udp_groups: dict[tuple, dict[str, t.Any]] = {}
        self.other_groups = 0

    def add(self, entry: dict[str, t.Any]) -> None:
        self.listed += 1
        protocol = entry.get("protocol") or "unknown"
        original = entry.get("original") or {}
        reply = entry.get("reply") or {}
        unreplied = "SEEN_REPLY" not in (entry.get("status") or [])
        nat_target = reply.get("src") if reply.get("src") not in (None, original.get("dst")) else None
        self.unreplied += unreplied
        self.dnat += nat_target is not None
        self.protocols[protocol] = self.protocols.get(protocol, 0) + 1
        port_key = (protocol, original.get("dport"))
        if port_key in self.ports or len(self.ports) < MAX_GROUPS:
            counts = self.ports.setdefault(port_key, [0, 0])
            counts[0] += 1
            counts[1] += unreplied
        timeout = entry.get("timeout")
        if isinstance(timeout, int):
            span = self.timeouts.setdefault(protocol, [timeout, timeout])
            span[0], span[1] = min(span[0], timeout), max(span[1], timeout)
        if protocol == "udp" and unreplied:
            self._add_udp(original, nat_target, timeout)

    def _add_udp(self, original: dict[str, t.Any], nat_target: str | None, timeout: t.Any) -> None:
        key = (original.get("dst"), original.get("dport"), nat_target)
        if key not in self.udp_groups and len(self.udp_groups) >= MAX_GROUPS:
            self.other_groups += 1
            return
        group = self.udp_groups.setdefault(key, {"dst": key[0], "dport": key[1], "nat_target": nat_target, "count": 0,
                                                 "sources": set(), "timeout_min": None, "timeout_max": None})
        group["count"] += 1
        if len(group["sources"]) < MAX_GROUPS:
            group["sources"].add(original.get("src"))
        if isinstance(timeout, int):
            group["timeout_min"] = timeout if group["timeout_min"] is None else min(group["timeout_min"], timeout)
            group["timeout_max"] = timeout if group["timeout_max"] is None else max(group["timeout_max"], timeout)

    def finish(self) -> dict[str, t.Any]:
        ports = sorted(self.ports.items(), key=lambda item: (-item[1][0], str(item[0])))[:TOP]
        groups = sorted(self.udp_groups.values(), key=lambda one: (-one["count"], str(one["dst"]), str(one["dport"])))
        return {
            "listed": self.listed,
            "unreplied": self.unreplied,
            "unreplied_percent": round(100.0 * self.unreplied / self.listed, 1) if self.listed else 0.0,
            "dnat": self.dnat,
            "by_protocol": dict(sorted(self.protocols.items(), key=lambda item: (-item[1], item[0]))[:TOP]),
            "top_ports": [{"protocol": key[0], "dport": key[1], "count": value[0], "unreplied": value[1]}
                          for key, value in ports],
            "timeouts": {protocol: {"min": span[0], "max": span[1]} for protocol, span in sorted(self.timeouts.items())},
            "unreplied_udp": [dict(one, sources=len(one["sources"])) for one in groups[:TOP]],
            "unreplied_udp_groups": len(groups) + self.other_groups,
        }


def summarize_entries(entries: t.Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The makeup of decoded entries (pure; for recorded dumps)."""
    makeup = Makeup()
    for entry in entries:
        makeup.add(entry)
    return makeup.finish()


def read_makeup(open_socket: t.Callable[[], t.Any] = CtnetlinkSocket) -> dict[str, t.Any]:
    """The makeup of the conntrack table of the caller's network namespace, streamed over one ctnetlink dump."""
    makeup = Makeup()
    with open_socket() as sock:
        for dummy, data in sock.dump_messages(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET):
            makeup.add(decode_ct_entry(data, 0, len(data), protocol_name))
    return makeup.finish()


__all__ = ("MAX_GROUPS", "Makeup", "read_makeup", "summarize_entries")
