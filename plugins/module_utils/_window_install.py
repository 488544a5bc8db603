# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Installing the host program conntrack-debug-window, and what root checks before it runs one.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The controller ships the program as a zip application of sources (see ``plugins/plugin_utils/_window_app.py``),
whose SHA-256 names its version. Python keeps no bytecode for a zip application, so every run would compile the
whole program again. The installed copy is therefore compiled once, on the host, by the interpreter that runs it:
each module as unchecked hash-based bytecode beside its source, so that another interpreter still runs it from
source. Two lines at the top of the installed copy name the shipped version it was compiled from, the bytecode's
magic number and the SHA-256 of the archive that follows, which is everything that runs; ``program_version``
checks all three before the copy is run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import marshal
import os
import runpy
import stat
import sys

from ansible_collections.netfilter.conntrack.plugins.module_utils._atomic_file import write_file_atomically

SHEBANG = b"#!/usr/bin/env python3\n"
COMPILED_MARK = b"# conntrack-debug-window compiled "
# Unchecked hash-based bytecode (PEP 552): valid whatever the archive's timestamps say, and never compared with
# its source on import; the digest in the header vouches for both.
UNCHECKED_HASH_PYC = 0b01
# The date of every member: the same bytes for the same program and interpreter.
MEMBER_DATE = (1980, 1, 1, 0, 0, 0)


def program_version(data: bytes) -> str:
    """The SHA-256 of the shipped program that data is, or was compiled from; "" for a compiled copy that is
    damaged or compiled for another interpreter. The action's bootstrap runs this function's source (with
    COMPILED_MARK) on the host before the program: it may use nothing else of this module."""
    rest = data.partition(b"\n")[2]
    mark, archive = rest.partition(b"\n")[::2]
    if not mark.startswith(COMPILED_MARK):
        return hashlib.sha256(data).hexdigest()
    fields = dict(word.split("=", 1) for word in mark.decode("ascii", "replace").split() if "=" in word)
    if (fields.get("magic") != importlib.util.MAGIC_NUMBER.hex()
            or fields.get("archive") != hashlib.sha256(archive).hexdigest()):
        return ""
    return fields.get("source", "")


def source_sha256(path: str) -> str:
    """The version of the program at path (see program_version)."""
    with open(path, "rb") as handle:
        return program_version(handle.read())


def compiled_members(archive, location: str) -> dict[str, bytes]:
    """The members of an open shipped (or compiled) zipfile.ZipFile, each module's bytecode for this interpreter added."""
    members = {}
    for name in archive.namelist():
        if name.endswith(".pyc"):
            continue
        members[name] = archive.read(name)
        if name.endswith(".py"):
            # dont_inherit: this module's own __future__ imports must not leak into the program's code.
            code = compile(members[name], f"{location}/{name}", "exec", dont_inherit=True, optimize=0)
            header = importlib.util.MAGIC_NUMBER + UNCHECKED_HASH_PYC.to_bytes(4, "little")
            members[name + "c"] = header + importlib.util.source_hash(members[name]) + marshal.dumps(code)
    return members


def compile_program(shipped: bytes, location: str) -> bytes:
    """The installed form of a shipped program that will live at location (see the module's docstring).

    Raises ValueError when shipped is not a zip application.
    """
    # Only an install needs zipfile: every other run of the program would pay for its import (bz2, lzma, shutil).
    import zipfile  # pylint: disable=import-outside-toplevel

    def header(archive_digest: str) -> bytes:
        return SHEBANG + COMPILED_MARK + (f"source={program_version(shipped)} magic={importlib.util.MAGIC_NUMBER.hex()}"
                                          f" archive={archive_digest}\n").encode("ascii")
    try:
        with zipfile.ZipFile(io.BytesIO(shipped)) as archive:
            members = compiled_members(archive, location)
    except zipfile.BadZipFile:
        raise ValueError("not a zip application") from None
    placeholder = header("0" * 64)
    buffer = io.BytesIO()
    # The archive is written after the header's place, so that its offsets count from the start of the file.
    buffer.write(placeholder)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in sorted(members.items()):
            info = zipfile.ZipInfo(name, date_time=MEMBER_DATE)
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    body = buffer.getvalue()[len(placeholder):]
    return header(hashlib.sha256(body).hexdigest()) + body


def unsafe_directory(directory: str) -> str | None:
    """Why root must not install into directory (or run a program from it), or None.

    Each existing component must be a directory owned by root (this user) and not writable by group or others:
    anyone who can write one of them can replace what root runs. A sticky directory owned by root (/tmp) is
    accepted: others cannot rename or remove the entries they do not own there.
    """
    path = os.path.abspath(directory)
    parts = [path]
    while parts[-1] != os.path.dirname(parts[-1]):
        parts.append(os.path.dirname(parts[-1]))
    for component in reversed(parts):
        try:
            info = os.lstat(component)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(info.st_mode):
            return f"{component} is not a directory (a symlink or a file)"
        if info.st_uid not in (0, os.geteuid()):
            return f"{component} is owned by uid {info.st_uid}"
        writable = stat.S_IMODE(info.st_mode) & 0o022
        if writable and not (info.st_mode & stat.S_ISVTX and component != path):
            return f"{component} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def make_dirs(directory: str) -> None:
    """Create missing parents with the usual 0755 of system directories, whatever the umask."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        os.mkdir(path)
        os.chmod(path, 0o755)


def install(program: str, dest: str) -> tuple[str, dict | None]:
    """Install the running program at dest, compiled; returns (dest, None), or (program, the failed answer)."""
    unsafe = unsafe_directory(os.path.dirname(dest))
    if unsafe:
        return program, {"changed": False, "failed": True, "install_failed": True, "unsafe_path": True,
                         "msg": f"refusing to install {dest} as root: {unsafe}; use a directory that only root can"
                                " write (conntrack_debug_program_dir)"}
    try:
        with open(program, "rb") as handle:
            shipped = handle.read()
        make_dirs(os.path.dirname(dest))
        write_file_atomically(os.path.dirname(dest), os.path.basename(dest), compile_program(shipped, dest), 0o700)
    except OSError as exc:
        return program, {"changed": False, "failed": True, "install_failed": True,
                         "msg": f"cannot install {dest}: {exc.strerror or exc}"}
    except ValueError as exc:
        return program, {"changed": False, "failed": True, "install_failed": True,
                         "msg": f"cannot install {dest}: {program} is {exc}"}
    return dest, None


def install_then_run(argv: list[str]) -> None:
    """Run first by the program's __main__, before the program itself is imported: with ``--install-to=PATH``, install
    this program at PATH and run the command as that copy, in this process, so that the program is compiled once
    (for the installed copy), not a second time for this one. Returns when there is nothing to install, or when the
    install failed (the command line then reports it as usual)."""
    words = [word for word in argv[1:] if word.startswith("--install-to=")]
    if not words:
        return
    program, dest = os.path.abspath(argv[0]), os.path.abspath(words[0].split("=", 1)[1])
    expected = [word.split("=", 1)[1].lower() for word in argv[1:] if word.startswith("--expect-sha256=")]
    # Another version than the one expected installs nothing: the command line answers "stale".
    if expected and expected[0] != source_sha256(program) or install(program, dest)[1] is not None:
        return
    # What this copy imported so far (this module and what it needs) is imported again from the installed copy.
    for name in [name for name in sys.modules if name.startswith("ansible_collections")]:
        del sys.modules[name]
    sys.path[:] = [dest if entry == program else entry for entry in sys.path]
    sys.argv = [dest] + [word for word in argv[1:] if word not in words]
    runpy.run_path(dest, run_name="__main__")
    # The installed copy's __main__ exits with the command's status; the command must never run a second time here.
    raise SystemExit(0)


__all__ = ("compile_program", "install", "install_then_run", "make_dirs", "program_version", "source_sha256",
           "unsafe_directory")
