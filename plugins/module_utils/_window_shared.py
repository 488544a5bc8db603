# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host-wide values that windows of several namespaces need at once, held for as long as one of them is open.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

``nf_log_all_netns`` (a child namespace logs nothing to the kernel log without it) and the
dynamic-debug sites exist once per host. They are recorded once, in the ``shared`` record, with the
windows that asked for them (its holders). A window that ends gives them up; the last one restores
them. No window's deadline or token moves for them, so a host window and a namespace window open
together end each at its own deadline.

Snapshots written before this record existed kept these values in the host's snapshot (``init``)
and linked to it; :meth:`SharedValues.migrate_legacy` moves them here, under the lock, the first
time a command that changes windows meets them.
"""

from __future__ import annotations

import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug import read_control
from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_model import apply_flags, site_matches
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl_keys import KEY_ALL_NETNS
from ansible_collections.netfilter.conntrack.plugins.module_utils._window_store import PROGRAM_NAME, SHARED_ID


def site_record(site) -> dict:
    return {"filename": site.filename, "lineno": site.lineno, "module": site.module, "function": site.function,
            "format": site.format, "class": site.class_name}


def site_key(record: dict) -> tuple:
    return (record["filename"], record["lineno"], record.get("function"), record.get("format"))


def record_sites(data: dict, queries: list, control: str) -> list[str]:
    """Add every site the queries select (the module's matcher) with its flags before and after."""
    by_key = {site_key(record): record for record in data["dyndbg"]}
    added = []
    for site in read_control(control):
        for query, op, flags in queries:
            if not site_matches(query, site):
                continue
            record = by_key.get(site_key(site_record(site)))
            if record is None:
                record = site_record(site)
                record["original"] = record["applied"] = site.flags
                data["dyndbg"].append(record)
                by_key[site_key(record)] = record
                added.append(f"dyndbg {site.filename}:{site.lineno}")
            record["applied"] = apply_flags(record["applied"], op, flags)
    return added


def is_legacy(data: dict) -> bool:
    """A window snapshot that still holds host-wide values or links to the host's (written before the shared record)."""
    return "links" in data or KEY_ALL_NETNS in data.get("keys", {}) or bool(data.get("dyndbg"))


class SharedValues:
    """The shared record's part of the program (mixed into Program: uses its store, scheduler and restore code)."""

    def acquire_shared(self, holders: list[str], all_netns: str | None, queries: list, control: str | None) -> dict:
        """Record (once) and hold the host-wide values an enable asks for; returns what the answer says of them."""
        if all_netns is None and not (queries and control):
            return {}
        existing = self.store.load(SHARED_ID, self.command)
        data = existing or {"id": SHARED_ID, "keys": {}, "dyndbg": [], "holders": [], "created": time.time()}
        recorded = []
        if all_netns is not None:
            entry = data["keys"].get(KEY_ALL_NETNS)
            if entry is None:
                data["keys"][KEY_ALL_NETNS] = {"original": self.kernel.sysctl_value(KEY_ALL_NETNS), "applied": all_netns}
                recorded.append(KEY_ALL_NETNS)
            elif not self.same_value(KEY_ALL_NETNS, entry["applied"], all_netns):
                raise ConntrackModuleError(
                    f"the open window(s) of {', '.join(data['holders'])} set {KEY_ALL_NETNS}={entry['applied']} (now"
                    f" asked: {all_netns}); revert them first")
        if queries and control:
            recorded += record_sites(data, queries, control)
        data["holders"] = sorted(set(data["holders"]) | set(holders))
        data["written_by"] = PROGRAM_NAME
        self.store.save(data)
        return {"created": existing is None, "recorded": recorded, "holders": data["holders"],
                "original": {key: entry["original"] for key, entry in data["keys"].items()}, "dyndbg": data["dyndbg"],
                "snapshot": self.store.path(SHARED_ID)}

    def release_shared(self, ident: str, dry_run: bool = False, leaving: tuple = ()) -> dict | None:
        """Give up ident's hold; the last holder restores the values. None when ident held nothing.

        ``leaving`` are the other windows the same (check-mode) revert ends: they hold nothing any more either.
        """
        data = self.store.load(SHARED_ID, self.command)
        if data is None or ident not in data["holders"]:
            return None
        # A holder whose snapshot is gone (dropped, discarded) holds nothing any more.
        holders = [other for other in data["holders"]
                   if other != ident and other not in leaving and self.store.exists(other)]
        if holders:
            if not dry_run:
                data["holders"] = holders
                self.store.save(data)
            kept = sorted(data["keys"]) + [f"{len(data['dyndbg'])} dynamic-debug site(s)"] * bool(data["dyndbg"])
            return {"changed": False, "restored": {}, "left": {}, "kept": {"values": kept, "for": holders},
                    "msg": f"kept {' and '.join(kept)}: the window(s) of {', '.join(holders)} still need them"}
        report = {"restored": {}, "left": {}, "unchanged": [], "errors": {}}
        self.restore_keys(data["keys"], report, dry_run)
        if data["dyndbg"]:
            self.restore_sites(data["dyndbg"], report, dry_run)
        if report["errors"]:
            return {"changed": bool(report["restored"]), "failed": True, **report,
                    "msg": f"could not restore {', '.join(report['errors'])}; {self.store.path(SHARED_ID)} is kept"}
        if not dry_run:
            self.store.remove(SHARED_ID)
        return {"changed": bool(report["restored"]), **report,
                "msg": f"restored {len(report['restored'])} host-wide value(s), left {len(report['left'])} changed by"
                       " others"}

    def prune_shared(self) -> dict | None:
        """Release the holds of windows whose snapshot is gone (so the values do not outlive every window)."""
        data = self.store.load(SHARED_ID, self.command)
        if data is None:
            return None
        gone = [holder for holder in data["holders"] if not self.store.exists(holder)]
        result = None
        for holder in gone:
            result = self.release_shared(holder) or result
        return result

    def migrate_legacy(self) -> list[str]:
        """Move the host-wide values older snapshots kept in the host's snapshot into the shared record."""
        legacy = {}
        for ident in self.store.windows():
            try:
                data = self.store.load(ident, self.command)
            except ConntrackModuleError:
                continue
            if data is not None and is_legacy(data):
                legacy[ident] = data
        if not legacy:
            return []
        host = legacy.get("init")
        if host is not None:
            self._move_host_values(host, [ident for ident, data in legacy.items() if ident != "init" and (
                "init" in (data.get("links") or [])
                or (data.get("upgraded_from") == 1 and data.get("created") == host["created"]))])
        for ident, data in legacy.items():
            if ident == "init":
                continue
            data.pop("links", None)
            self.store.save(data)
        return sorted(legacy)

    def _move_host_values(self, host: dict, netns_holders: list[str]) -> None:
        """The host-wide values of an older host snapshot move to the shared record. 0.2.0 recorded every value of
        the host in the snapshot it took for a namespace's enable (and applied only the host-wide ones): all of it
        moves, and that snapshot goes. Any other host snapshot stays a window of its own (with no values left, if
        it had only host-wide ones) that holds the shared record until its deadline."""
        shared = self.store.load(SHARED_ID, self.command) or {
            "id": SHARED_ID, "keys": {}, "dyndbg": [], "holders": [], "created": host.get("created", time.time())}
        opened_with_namespaces = bool(netns_holders) and host.get("upgraded_from") == 1
        moved = {key: entry for key, entry in host["keys"].items() if key == KEY_ALL_NETNS or opened_with_namespaces}
        for key, entry in moved.items():
            shared["keys"].setdefault(key, entry)
        known = {site_key(record) for record in shared["dyndbg"]}
        shared["dyndbg"] += [record for record in host.get("dyndbg") or [] if site_key(record) not in known]
        own = {key: entry for key, entry in host["keys"].items() if key not in moved}
        keep_host = bool(own) or not netns_holders
        shared["holders"] = sorted(set(shared["holders"]) | set(netns_holders) | ({"init"} if keep_host else set()))
        self.store.save(shared)
        if keep_host:
            host.update(keys=own, dyndbg=[])
            host.pop("links", None)
            self.store.save(host)
        else:
            self.scheduler.cancel("init")
            self.store.remove("init")


__all__ = ("SharedValues", "is_legacy", "record_sites", "site_key", "site_record")
