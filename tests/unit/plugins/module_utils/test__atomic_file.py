# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _atomic_file
from ansible_collections.netfilter.conntrack.plugins.module_utils._atomic_file import read_regular_file, write_file_atomically


def test_write_and_read(tmp_path):
    write_file_atomically(str(tmp_path), "a.prom", b"x 1\n", 0o644)
    assert read_regular_file(str(tmp_path / "a.prom")) == "x 1\n"
    assert stat.S_IMODE(os.stat(tmp_path / "a.prom").st_mode) == 0o644
    write_file_atomically(str(tmp_path), "a.prom", b"x 2\n", 0o600)
    assert read_regular_file(str(tmp_path / "a.prom")) == "x 2\n"
    assert stat.S_IMODE(os.stat(tmp_path / "a.prom").st_mode) == 0o600
    assert os.listdir(tmp_path) == ["a.prom"]


def test_mode_is_kept_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        write_file_atomically(str(tmp_path), "a.prom", b"x\n", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.prom").st_mode) == 0o644


def test_read_does_not_follow_or_block(tmp_path):
    (tmp_path / "target").write_text("secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    os.mkfifo(tmp_path / "fifo")
    assert read_regular_file(str(tmp_path / "link")) is None
    assert read_regular_file(str(tmp_path / "fifo")) is None
    assert read_regular_file(str(tmp_path / "missing")) is None
    assert read_regular_file(str(tmp_path)) is None


@pytest.mark.parametrize("kind", ["symlink", "fifo", "dangling"])
def test_special_destination_is_replaced(tmp_path, kind):
    victim = tmp_path / "victim"
    victim.write_text("root only")
    if kind == "symlink":
        (tmp_path / "out").symlink_to(victim)
    elif kind == "fifo":
        os.mkfifo(tmp_path / "out")
    else:
        (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    write_file_atomically(str(tmp_path), "out", b"new\n", 0o644)
    assert victim.read_text() == "root only"
    assert not (tmp_path / "nowhere").exists()
    assert not (tmp_path / "out").is_symlink()
    assert (tmp_path / "out").read_text() == "new\n"


def test_a_planted_temporary_name_is_not_used(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text("root only")
    tokens = iter(["planted", "fresh"])
    monkeypatch.setattr(_atomic_file.secrets, "token_hex", lambda size: next(tokens))
    (tmp_path / ".out.planted.tmp").symlink_to(victim)
    write_file_atomically(str(tmp_path), "out", b"new\n", 0o644)
    assert victim.read_text() == "root only"
    assert (tmp_path / "out").read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == [".out.planted.tmp", "out", "victim"]


def test_a_directory_at_the_destination_fails_and_leaves_nothing(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(OSError):
        write_file_atomically(str(tmp_path), "out", b"new\n", 0o644)
    assert os.listdir(tmp_path) == ["out"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b"])
def test_names_that_are_not_file_names(tmp_path, name):
    with pytest.raises(ValueError):
        write_file_atomically(str(tmp_path), name, b"", 0o644)
