# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sysctl keys the collection reads and sets, named once.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!
"""

from __future__ import annotations

KEY_LOG_INVALID = "net.netfilter.nf_conntrack_log_invalid"
# Exists only in the initial network namespace: without it a child namespace logs nothing to the kernel log.
KEY_ALL_NETNS = "net.netfilter.nf_log_all_netns"
KEY_COUNT = "net.netfilter.nf_conntrack_count"
# Global: read-only in child namespaces.
KEY_MAX = "net.netfilter.nf_conntrack_max"
KEY_BUCKETS = "net.netfilter.nf_conntrack_buckets"
KEY_LOGGER_PREFIX = "net.netfilter.nf_log."


def logger_key(family_number: int) -> str:
    return f"{KEY_LOGGER_PREFIX}{family_number}"


__all__ = ("KEY_ALL_NETNS", "KEY_BUCKETS", "KEY_COUNT", "KEY_LOGGER_PREFIX", "KEY_LOG_INVALID", "KEY_MAX", "logger_key")
