# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._netns import enter_netns, netns_path

PATHS = [
    ("blue", "/run/netns/blue"),
    ("cni-1234-abcd", "/run/netns/cni-1234-abcd"),
    ("/proc/42/ns/net", "/proc/42/ns/net"),
    ("/var/run/docker/netns/0123", "/var/run/docker/netns/0123"),
]
BAD_NAMES = ["", ".", "..", "../etc", "a/b", "blue green", "x\ny", "x;y", "a" * 256]


@pytest.mark.parametrize("spec, path", PATHS)
def test_netns_path(spec, path):
    assert netns_path(spec) == path


@pytest.mark.parametrize("spec", BAD_NAMES)
def test_netns_path_rejects(spec):
    with pytest.raises(ConntrackModuleError):
        netns_path(spec)


def test_enter_none_stays():
    assert enter_netns(None) is None


def test_enter_missing_name(tmp_path):
    with pytest.raises(ConntrackModuleError, match=r"/nope does not exist \(no namespace named 'nope'"):
        enter_netns("nope", run_dir=str(tmp_path))


def test_enter_a_file_that_is_not_a_namespace(tmp_path):
    # setns() answers EINVAL for a file that is not a namespace; no privileges are needed to get there.
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(ConntrackModuleError, match="is not a network namespace"):
        enter_netns(str(plain))
