# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the collector as the host program would: usage: collector.py CONFIG.json

CONFIG.json holds CaptureConfig's fields (budgets as an object). When a budget ends the capture,
the callback writes ``callback_marker`` (JSON: the budget and the time the callback ran), standing
in for the window's revert.
"""
import json
import sys
import time

from ansible_collections.netfilter.conntrack.plugins.module_utils._capture import run_collector
from ansible_collections.netfilter.conntrack.plugins.module_utils._capture_config import config_from_dict


def main():
    with open(sys.argv[1]) as handle:
        raw = json.load(handle)
    marker = raw.pop("callback_marker", None)
    config = config_from_dict(raw)

    def on_budget_exceeded(budget):
        if marker:
            with open(marker, "w") as handle:
                json.dump({"budget": budget, "ran": time.time()}, handle)

    summary = run_collector(config, on_budget_exceeded)
    print(json.dumps({"state": summary["state"], "stopped_by": summary["stopped_by"], "events": summary["events"]}))


if __name__ == "__main__":
    main()
