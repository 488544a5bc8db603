# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark callback: tasks, bytes returned and changed per host, wall time per task, as one JSON file."""

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_stats
type: aggregate
short_description: Per-host task counts, bytes returned and per-task wall time for bench/fleet
description:
  - Writes one JSON file (environment variable E(FLEET_STATS_OUT)) when the playbook ends.
  - Bytes returned are the size of each task result as JSON, as the controller received it (the
    results of all loop items included); for C(fetch) the size of the fetched file is added.
  - A task counts as remote unless it is one of the controller-side actions (set_fact, debug, assert,
    fail, meta, include_*) or delegated to localhost.
requirements:
  - enable in ansible.cfg or with ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

CONTROLLER_ACTIONS = {
    "set_fact", "debug", "assert", "fail", "meta", "include_tasks", "include_role", "import_tasks",
    "import_role", "include_vars", "validate_argument_spec", "add_host", "group_by", "pause", "set_stats",
}


def _short(action):
    return (action or "").rsplit(".", 1)[-1]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_stats"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._start = time.monotonic()
        self._hosts = {}
        self._tasks = []
        self._current = None

    def _close_task(self):
        if self._current is not None:
            self._current["seconds"] = round(time.monotonic() - self._current.pop("_t0"), 3)
            self._tasks.append(self._current)
            self._current = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_task()
        self._current = {
            "name": task.get_name(),
            "action": _short(task.action),
            "remote": _short(task.action) not in CONTROLLER_ACTIONS and str(task.delegate_to or "") not in (
                "localhost", "127.0.0.1"),
            "hosts": 0, "skipped": 0, "changed": 0, "bytes": 0,
            "_t0": time.monotonic(),
        }

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _record(self, result, status):
        host = result._host.get_name()
        entry = self._hosts.setdefault(host, {
            "tasks": 0, "remote_tasks": 0, "skipped": 0, "changed": 0, "failed": 0, "bytes": 0,
            "remote_bytes": 0, "by_task": {}})
        try:
            size = len(json.dumps(result._result, default=str, sort_keys=True))
        except Exception:  # pylint: disable=broad-except
            size = len(str(result._result))
        if _short(result._task.action) == "fetch":
            dest = result._result.get("dest")
            if dest and os.path.isfile(dest):
                size += os.path.getsize(dest)
        remote = self._current["remote"] if self._current else True
        if status == "skipped":
            entry["skipped"] += 1
            if self._current:
                self._current["skipped"] += 1
            return
        entry["tasks"] += 1
        entry["bytes"] += size
        if remote:
            entry["remote_tasks"] += 1
            entry["remote_bytes"] += size
        if result._result.get("changed"):
            entry["changed"] += 1
            if self._current:
                self._current["changed"] += 1
        if status in ("failed", "unreachable"):
            entry["failed"] += 1
        name = self._current["name"] if self._current else result._task.get_name()
        entry["by_task"][name] = entry["by_task"].get(name, 0) + size
        if self._current:
            self._current["hosts"] += 1
            self._current["bytes"] += size

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        self._close_task()
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        out = {
            "seconds": round(time.monotonic() - self._start, 3),
            "hosts": self._hosts,
            "stats": summary,
            "tasks": self._tasks,
        }
        path = os.environ.get("FLEET_STATS_OUT")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(out, handle, indent=1, sort_keys=True)
