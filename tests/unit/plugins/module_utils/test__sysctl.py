# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import errno

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError
from ansible_collections.netfilter.conntrack.plugins.module_utils._sysctl import (
    describe_os_error,
    key_path,
    read_key,
    write_key,
)

KEY_PATHS = [
    ("net.netfilter.nf_conntrack_log_invalid", "/proc/sys/net/netfilter/nf_conntrack_log_invalid"),
    ("net.netfilter.nf_log.10", "/proc/sys/net/netfilter/nf_log/10"),
]
BAD_KEYS = ["", "net", "net..x", "net.netfilter/../../etc", "net.netfilter.nf log", "../x.y"]


@pytest.mark.parametrize("key, path", KEY_PATHS)
def test_key_path(key, path):
    assert key_path(key) == path


@pytest.mark.parametrize("key", BAD_KEYS)
def test_key_path_rejects(key):
    with pytest.raises(ConntrackModuleError, match="not a valid sysctl name"):
        key_path(key)


ERRNO_MESSAGES = [
    (errno.EINVAL, "7", "the kernel rejected '7' for net.x.y (EINVAL)"),
    (errno.ENOENT, None, "net.x.y does not exist in this network namespace"),
    (errno.ENOENT, "nf_log_foo", "no such logger or value is available (ENOENT)"),
    (errno.EACCES, "1", "/proc/sys is read-only here (EACCES)"),
    (errno.EROFS, "1", "/proc/sys is read-only here (EROFS)"),
    (errno.EPERM, "1", "/proc/sys is read-only here (EPERM)"),
    (errno.EIO, None, "cannot access net.x.y"),
]


@pytest.mark.parametrize("err, value, message", ERRNO_MESSAGES)
def test_describe_os_error(err, value, message):
    assert message in describe_os_error("net.x.y", OSError(err, "strerror"), value)


@pytest.fixture
def fake_root(tmp_path):
    (tmp_path / "net" / "netfilter").mkdir(parents=True)
    (tmp_path / "net" / "netfilter" / "nf_conntrack_log_invalid").write_text("0\n")
    return str(tmp_path)


def test_read_and_write(fake_root):
    key = "net.netfilter.nf_conntrack_log_invalid"
    assert read_key(key, fake_root) == "0"
    write_key(key, "6", fake_root)
    assert read_key(key, fake_root) == "6"


def test_read_missing_key(fake_root):
    with pytest.raises(ConntrackModuleError, match="does not exist in this network namespace"):
        read_key("net.netfilter.nf_log.2", fake_root)


@pytest.mark.parametrize("value", ["", "6\n", "6\n255", "nf_log\0"])
def test_write_refuses_values_the_kernel_would_mangle(fake_root, value):
    key = "net.netfilter.nf_conntrack_log_invalid"
    with pytest.raises(ConntrackModuleError, match="empty or multi-line"):
        write_key(key, value, fake_root)
    assert read_key(key, fake_root) == "0"
