# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.netfilter.conntrack.plugins.plugin_utils._revert_program import PROGRAM_SOURCE, program_sha256, window_ids

WINDOW_CASES = [
    ("host namespace", [], False, ["--id=init"]),
    ("host namespace with all_netns", [], True, ["--id=init"]),
    ("one child namespace", ["a"], False, ["--netns=a"]),
    ("child namespaces and the host record of nf_log_all_netns", ["a", "/proc/1/ns/net"], True,
     ["--netns=a", "--netns=/proc/1/ns/net", "--id=init"]),
]


@pytest.mark.parametrize("netns, all_netns, expected", [c[1:] for c in WINDOW_CASES], ids=[c[0] for c in WINDOW_CASES])
def test_window_ids(netns, all_netns, expected):
    assert window_ids(netns, all_netns) == expected


def test_program_source_is_the_role_file():
    assert os.path.basename(PROGRAM_SOURCE) == "conntrack-debug-revert"
    with open(PROGRAM_SOURCE, "rb") as handle:
        data = handle.read()
    assert data.startswith(b"#!/usr/bin/python3\n")
    assert program_sha256() == hashlib.sha256(data).hexdigest()


def run_program(*argv, state_dir):
    env = dict(os.environ, CONNTRACK_DEBUG_STATE_DIR=str(state_dir))
    proc = subprocess.run([sys.executable, PROGRAM_SOURCE] + list(argv), capture_output=True, text=True, env=env, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_expect_sha256_refuses_another_version(tmp_path):
    rc, out = run_program("--expect-sha256=" + "0" * 64, "status", state_dir=tmp_path / "state")
    assert rc == 3 and out["stale_program"] is True
    rc, out = run_program("--expect-sha256=" + program_sha256(), "status", state_dir=tmp_path / "state")
    assert rc == 0 and out["order"] == ["init"]


def test_install_copies_itself_once(tmp_path):
    dest = tmp_path / "libexec" / "conntrack-debug-revert"
    assert run_program("install", f"--dest={dest}", state_dir=tmp_path)[1]["changed"] is True
    assert run_program("install", f"--dest={dest}", state_dir=tmp_path)[1]["changed"] is False
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert program_sha256(str(dest)) == program_sha256()
    assert sorted(os.listdir(dest.parent)) == ["conntrack-debug-revert"]
