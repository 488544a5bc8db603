# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The rollback path of nf_log_backend (set_backends in _nf_log): a kernel that refuses the second family's write.

The real kernel cannot be made to refuse a registered logger on demand, so the host's kernel is a temporary tree
whose writes to a chosen key fail.
"""

from __future__ import annotations

import types

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils import _nf_log
from ansible_collections.netfilter.conntrack.tests.unit.plugins.module_utils.kernel_tree import TreeKernel

NF_LOG = " 2 NONE (nf_log_ipv4,nfnetlink_log)\n10 NONE (nf_log_ipv6,nfnetlink_log)\n"
KEYS = ("net.netfilter.nf_log.2", "net.netfilter.nf_log.10")


class Sysctl:
    """The tree's values of KEYS and the writes that reached it."""

    def __init__(self, kernel):
        self.kernel = kernel

    @property
    def values(self):
        return {key: self.kernel.sysctl_read(key) for key in KEYS}

    @property
    def writes(self):
        return self.kernel.sysctl_writes


@pytest.fixture
def fake(tmp_path):
    def install(refuse=None, check_mode=False):
        kernel = TreeKernel(tmp_path, {key: "NONE" for key in KEYS}, nf_log=NF_LOG)
        if refuse:
            kernel.refuse[refuse] = f"the kernel rejected the value for {refuse} (EINVAL)"
        return Sysctl(kernel), types.SimpleNamespace(check_mode=check_mode, diff=False, kernel=kernel)

    return install


def test_sets_every_family(fake):
    sysctl, module = fake()
    result = {"changed": False, "loaded_modules": []}
    _nf_log.set_backends(module, [2, 10], "auto", False, result)
    assert result["changed"]
    assert result["previous"] == {"ipv4": "NONE", "ipv6": "NONE"}
    assert result["current"] == {"ipv4": "nf_log_ipv4", "ipv6": "nf_log_ipv6"}
    assert sysctl.values == {"net.netfilter.nf_log.2": "nf_log_ipv4", "net.netfilter.nf_log.10": "nf_log_ipv6"}


def test_check_mode_writes_nothing(fake):
    sysctl, module = fake(check_mode=True)
    result = {"changed": False, "loaded_modules": []}
    _nf_log.set_backends(module, [2, 10], "auto", False, result)
    assert result["changed"]
    assert sysctl.writes == []


def test_failure_on_second_family_restores_the_first(fake):
    sysctl, module = fake(refuse="net.netfilter.nf_log.10")
    result = {"changed": False, "loaded_modules": []}
    with pytest.raises(ConntrackModuleError, match="restored 1 family setting"):
        _nf_log.set_backends(module, [2, 10], "auto", False, result)
    assert sysctl.values == {"net.netfilter.nf_log.2": "NONE", "net.netfilter.nf_log.10": "NONE"}
    assert sysctl.writes[-1] == ("net.netfilter.nf_log.2", "NONE")


def test_unregistered_logger_fails_before_any_write(fake):
    sysctl, module = fake()
    result = {"changed": False, "loaded_modules": []}
    with pytest.raises(ConntrackModuleError, match="logger nfnetlink_queue is not registered for family ipv4"):
        _nf_log.set_backends(module, [2, 10], "nfnetlink_queue", False, result)
    assert sysctl.writes == []
