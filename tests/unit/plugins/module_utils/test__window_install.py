# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The installed form of the host program: compiled once for the host's interpreter, its version named and its
archive vouched for by the two lines at its top."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.netfilter.conntrack.plugins.module_utils import _window_install as wi

MAIN = b"import sys\nfrom pkg.mod import main\nsys.exit(main())\n"
MODULE = b"import json\n\ndef main():\n    print(json.dumps({'ran': 'source'}))\n    return 0\n"


def shipped_archive(members=None) -> bytes:
    """A small zip application shaped like the shipped program: a shebang, sources only."""
    buffer = io.BytesIO()
    buffer.write(wi.SHEBANG)
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted((members or {"__main__.py": MAIN, "pkg/__init__.py": b"", "pkg/mod.py": MODULE}).items()):
            archive.writestr(name, data)
    return buffer.getvalue()


def members_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rebuilt(data: bytes, change) -> bytes:
    """data with its archive's members passed through change(name, bytes) and its header kept as it was."""
    header_end = data.index(b"\n", len(wi.SHEBANG)) + 1
    buffer = io.BytesIO()
    buffer.write(data[:header_end])
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, member in sorted(members_of(data).items()):
            archive.writestr(name, change(name, member))
    return buffer.getvalue()


def run(path, *argv):
    proc = subprocess.run([sys.executable, str(path)] + list(argv), capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def test_the_shipped_archive_is_named_by_its_own_digest():
    shipped = shipped_archive()
    assert wi.program_version(shipped) == hashlib.sha256(shipped).hexdigest()


def test_the_compiled_copy_names_the_shipped_version_and_holds_bytecode_beside_each_source():
    shipped = shipped_archive()
    compiled = wi.compile_program(shipped, "/usr/local/libexec/x.pyz")
    first, mark = compiled.split(b"\n")[:2]
    assert first + b"\n" == wi.SHEBANG and mark.startswith(wi.COMPILED_MARK)
    assert wi.program_version(compiled) == hashlib.sha256(shipped).hexdigest()
    members = members_of(compiled)
    assert sorted(members) == sorted(["__main__.py", "__main__.pyc", "pkg/__init__.py", "pkg/__init__.pyc",
                                      "pkg/mod.py", "pkg/mod.pyc"])
    for name in ("__main__", "pkg/__init__", "pkg/mod"):
        assert members[name + ".py"] == members_of(shipped)[name + ".py"], "the source is kept"
        assert members[name + ".pyc"][:4] == importlib.util.MAGIC_NUMBER
        assert members[name + ".pyc"][4:8] == (0b01).to_bytes(4, "little"), "unchecked hash-based bytecode"
        assert members[name + ".pyc"][8:16] == importlib.util.source_hash(members[name + ".py"])


def test_compiling_a_compiled_copy_again_keeps_its_version():
    shipped = shipped_archive()
    compiled = wi.compile_program(shipped, "/x.pyz")
    again = wi.compile_program(compiled, "/x.pyz")
    assert wi.program_version(again) == hashlib.sha256(shipped).hexdigest()
    assert sorted(members_of(again)) == sorted(members_of(compiled))


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 1])


DAMAGED = [
    ("a byte of the archive changed", flip_last_byte),
    ("bytecode of another interpreter",
     lambda data: data.replace(b"magic=" + importlib.util.MAGIC_NUMBER.hex().encode(), b"magic=00000000", 1)),
    ("another source version claimed", lambda data: data.replace(b"source=", b"source=0", 1)),
    ("archive digest removed", lambda data: data.replace(b" archive=", b" other=", 1)),
]


@pytest.mark.parametrize("damage", [d[1] for d in DAMAGED], ids=[d[0] for d in DAMAGED])
def test_a_damaged_compiled_copy_names_no_shipped_version(damage):
    shipped = shipped_archive()
    assert wi.program_version(damage(wi.compile_program(shipped, "/x.pyz"))) != hashlib.sha256(shipped).hexdigest()


def test_the_compiled_copy_runs_its_bytecode(tmp_path):
    """With every source replaced by a program that fails, the compiled copy still runs: the bytecode is used."""
    compiled = wi.compile_program(shipped_archive(), str(tmp_path / "x.pyz"))
    path = tmp_path / "x.pyz"
    path.write_bytes(rebuilt(compiled, lambda name, data: b"raise SystemExit(9)\n" if name.endswith(".py") else data))
    assert run(path)[:2] == (0, json.dumps({"ran": "source"}) + "\n")


def test_bytecode_of_another_interpreter_falls_back_to_the_source(tmp_path):
    """Where no bootstrap checks the copy first (the automatic revert's timer after a Python upgrade), it still runs."""
    compiled = wi.compile_program(shipped_archive(), str(tmp_path / "x.pyz"))
    path = tmp_path / "x.pyz"
    path.write_bytes(rebuilt(compiled, lambda name, data: b"\0\0\0\0" + data[4:] if name.endswith(".pyc") else data))
    assert run(path)[:2] == (0, json.dumps({"ran": "source"}) + "\n")


def test_install_writes_the_compiled_copy(tmp_path):
    shipped = tmp_path / "build" / "shipped.pyz"
    shipped.parent.mkdir()
    shipped.write_bytes(shipped_archive())
    dest = tmp_path / "libexec" / "netfilter-conntrack" / "x.pyz"
    assert wi.install(str(shipped), str(dest)) == (str(dest), None)
    assert wi.source_sha256(str(dest)) == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700 and stat.S_IMODE(dest.parent.stat().st_mode) == 0o755
    assert run(dest)[:2] == (0, json.dumps({"ran": "source"}) + "\n")


def test_install_of_something_that_is_no_zip_application_fails_and_writes_nothing(tmp_path):
    shipped = tmp_path / "shipped.pyz"
    shipped.write_bytes(b"PK fake archive")
    dest = tmp_path / "libexec" / "x.pyz"
    program, failure = wi.install(str(shipped), str(dest))
    assert program == str(shipped) and failure["install_failed"] is True and failure["failed"] is True
    assert failure["msg"] == f"cannot install {dest}: {shipped} is not a zip application"
    assert not os.path.exists(dest)
