# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.modules import conntrack_lists_facts as mod

PARAMS = {
    "lists": ["table", "unconfirmed", "dying", "expect"],
    "family": "all",
    "include_entries": False,
    "max_entries": 20,
    "summary_only": False,
    "load_module": True,
    "thresholds": {"unlisted": 100, "unlisted_percent": 1.0, "dying": 100, "usage_percent": 90.0},
    "netns": None,
}


class DummyModule:
    def __init__(self, check_mode: bool = False, **params: t.Any) -> None:
        self.params = dict(PARAMS, **params)
        self.check_mode = check_mode
        self._diff = False


@pytest.fixture
def fake_gather(monkeypatch: pytest.MonkeyPatch) -> dict[str, t.Any]:
    seen: dict[str, t.Any] = {"modprobed": []}

    def gather(**kwargs: t.Any) -> tuple[dict[str, t.Any], str | None]:
        seen.update(kwargs)
        loaded = "nf_conntrack_netlink" if kwargs["load_module"]("nf_conntrack_netlink") else None
        return {"count": 1}, loaded

    monkeypatch.setattr(mod, "gather", gather)
    monkeypatch.setattr(mod, "enter_netns", lambda spec: None if spec is None else f"/run/netns/{spec}")
    monkeypatch.setattr(mod, "modprobe", lambda host, name, dry_run: seen["modprobed"].append(name))
    return seen


TEST_RUN = [
    # (id, check_mode, params, expected changed, expected modprobe calls)
    ("loads ctnetlink when the kernel lacks it", False, {}, True, ["nf_conntrack_netlink"]),
    ("check mode never loads", True, {}, False, []),
    ("load_module=false never loads", False, {"load_module": False}, False, []),
]


@pytest.mark.parametrize("check_mode, params, changed, modprobed", [c[1:] for c in TEST_RUN], ids=[c[0] for c in TEST_RUN])
def test_run(fake_gather: dict[str, t.Any], check_mode: bool, params: dict[str, t.Any], changed: bool, modprobed: list[str]) -> None:
    module = DummyModule(check_mode=check_mode, **params)
    result = mod.run(module)  # type: ignore[arg-type]
    assert result["changed"] is changed
    assert result["ansible_facts"] == {"conntrack": {"count": 1}}
    assert fake_gather["modprobed"] == modprobed
    assert ("loaded_module" in result) is changed


def test_run_maps_family_and_netns(fake_gather: dict[str, t.Any]) -> None:
    mod.run(DummyModule(family="ipv6", netns="blue"))  # type: ignore[arg-type]
    assert fake_gather["family"] == 10
    assert fake_gather["netns"] == "/run/netns/blue"


@pytest.mark.parametrize("params, message", [
    ({"max_entries": -1}, "max_entries"),
    ({"thresholds": dict(PARAMS["thresholds"], dying=-5)}, "thresholds.dying"),
])
def test_run_rejects_negative_limits(fake_gather: dict[str, t.Any], params: dict[str, t.Any], message: str) -> None:
    with pytest.raises(ConntrackModuleError, match=message):
        mod.run(DummyModule(**params))  # type: ignore[arg-type]
