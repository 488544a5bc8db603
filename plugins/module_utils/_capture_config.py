# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the evidence collector captures, where, and within which budgets: one object, checked once.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

``config_from_dict()`` builds it from plain JSON (what a supervisor passes to the collector process),
and ``CaptureConfig.check()`` is the validation both the caller and the collector run.
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_budget import Budgets
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._nflog import CONNTRACK_GROUP, DEFAULT_COPY_RANGE, DEFAULT_RCVBUF


@dataclasses.dataclass
class CaptureConfig:
    """What to capture where: ``namespaces`` is a list of (label, netns name or path, or None for ours)."""

    namespaces: list[tuple[str, str | None]]
    aggregate_path: str
    pcap_dir: str | None = None
    samples_per_reason: int = 20
    budgets: Budgets = dataclasses.field(default_factory=Budgets)
    group: int = CONNTRACK_GROUP
    copy_range: int = DEFAULT_COPY_RANGE
    rcvbuf: int = DEFAULT_RCVBUF  # the kernel doubles it: 64 MiB, about 80,000 queued events, per namespace
    max_keys: int = 64
    max_peers: int = 256
    watch_kmsg: bool = False
    flush_interval: float = 1.0
    deadline: float | None = None  # epoch seconds; the window's own revert normally comes first
    window_id: str | None = None  # a collector re-armed for the same window continues the counts of a dead one

    def problems(self) -> list[str]:
        """Every reason this configuration cannot run, in words for the operator (empty when it can)."""
        found = []
        labels = [label for label, _path in self.namespaces]
        if not labels and not self.watch_kmsg:
            found.append("nothing to capture: no namespace and no kernel-log watch")
        if len(set(labels)) != len(labels):
            found.append("namespace labels must be unique: %s" % ", ".join(sorted(labels)))
        for path_name in ("aggregate_path", "pcap_dir"):
            value = getattr(self, path_name)
            if value is not None and not os.path.isabs(value):
                found.append("%s must be an absolute path, not %r" % (path_name, value))
        found.extend(_out_of_range(self))
        budgets = self.budgets
        for name in ("max_packets", "max_rate", "max_cpu_share", "max_kmsg_lines_per_second"):
            value = getattr(budgets, name)
            if value is not None and not _positive(value):
                found.append("budget %s must be positive or null, not %r" % (name, value))
        for name in ("rate_interval", "cpu_interval"):
            if not _positive(getattr(budgets, name)):
                found.append("budget %s must be positive" % name)
        return found

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise ConntrackModuleError("invalid capture configuration: " + "; ".join(problems))


def _positive(value: t.Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _out_of_range(config: CaptureConfig) -> t.Iterator[str]:
    for name, low, high in (
        ("samples_per_reason", 0, 10000),
        ("group", 0, 65535),
        ("copy_range", 1, 65535),
        ("rcvbuf", 65536, 1 << 30),
        ("max_keys", 1, 10000),
        ("max_peers", 1, 100000),
    ):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            yield "%s must be an integer from %d to %d, not %r" % (name, low, high, value)
    if not _positive(config.flush_interval):
        yield "flush_interval must be positive"


def config_from_dict(raw: dict[str, t.Any]) -> CaptureConfig:
    """A CaptureConfig from JSON-shaped data (budgets as an object, namespaces as pairs); checked."""
    known = {field.name for field in dataclasses.fields(CaptureConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConntrackModuleError("unknown capture settings: %s" % ", ".join(unknown))
    values = dict(raw)
    budget_fields = {field.name for field in dataclasses.fields(Budgets)}
    budgets = values.get("budgets") or {}
    if not isinstance(budgets, dict) or set(budgets) - budget_fields:
        raise ConntrackModuleError("budgets must be an object with some of: %s" % ", ".join(sorted(budget_fields)))
    values["budgets"] = Budgets(**budgets)
    try:
        values["namespaces"] = [(str(label), None if path is None else str(path)) for label, path in values.get("namespaces") or []]
    except (TypeError, ValueError) as exc:
        raise ConntrackModuleError("namespaces must be a list of [label, netns path or null] pairs") from exc
    try:
        config = CaptureConfig(**values)
    except TypeError as exc:
        raise ConntrackModuleError("incomplete capture settings: %s" % exc) from exc
    config.check()
    return config
