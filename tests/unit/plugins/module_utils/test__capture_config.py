# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_config import CaptureConfig, config_from_dict
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

GOOD = {"namespaces": [["web", "/run/netns/web"], ["host", None]], "aggregate_path": "/var/lib/x/capture.json", "pcap_dir": "/var/lib/x"}


def test_config_from_dict():
    config = config_from_dict(dict(GOOD, budgets={"max_packets": 10}, window_id="w1"))
    assert config.namespaces == [("web", "/run/netns/web"), ("host", None)]
    assert config.budgets.max_packets == 10 and config.budgets.max_rate == 50000.0
    assert config.window_id == "w1" and config.problems() == []


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"namespaces": []}, "nothing to capture"),
        ({"namespaces": [["a", None], ["a", "/run/netns/b"]]}, "labels must be unique"),
        ({"aggregate_path": "capture.json"}, "aggregate_path must be an absolute path"),
        ({"pcap_dir": "relative"}, "pcap_dir must be an absolute path"),
        ({"copy_range": 0}, "copy_range must be an integer from 1 to 65535"),
        ({"samples_per_reason": True}, "samples_per_reason must be an integer"),
        ({"rcvbuf": 1024}, "rcvbuf must be an integer from 65536"),
        ({"budgets": {"max_packets": 0}}, "budget max_packets must be positive or null"),
        ({"budgets": {"rate_interval": 0}}, "budget rate_interval must be positive"),
        ({"budgets": {"max_pakcets": 1}}, "budgets must be an object with some of"),
        ({"flush_interval": 0}, "flush_interval must be positive"),
        ({"colour": "blue"}, "unknown capture settings: colour"),
        ({"namespaces": [["only-a-label"]]}, "namespaces must be a list of [label, netns path or null] pairs"),
    ],
)
def test_invalid_settings_are_refused_in_words(changes, message):
    with pytest.raises(ConntrackModuleError) as caught:
        config_from_dict(dict(GOOD, **changes))
    assert message in caught.value.msg


def test_kernel_log_watch_alone_is_something_to_capture():
    assert CaptureConfig(namespaces=[], aggregate_path="/x.json", watch_kmsg=True).problems() == []


def test_missing_required_setting():
    with pytest.raises(ConntrackModuleError, match="incomplete capture settings"):
        config_from_dict({"namespaces": [["a", None]]})


@pytest.mark.parametrize("value", ["10", True, float("nan"), -1])
def test_budget_values_must_be_positive_numbers(value):
    with pytest.raises(ConntrackModuleError, match="budget max_rate must be positive or null"):
        config_from_dict(dict(GOOD, budgets={"max_rate": value}))
