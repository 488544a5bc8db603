# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cache the code objects that zipimport compiles from source (qemu test guests only).

Every Ansible module task ships its module_utils in a zip that Python imports with zipimport, which
never writes bytecode: under TCG, compiling ansible.module_utils again for every task costs about
1.5 s of the 3-6 s a task takes. tests/vm/vm.sh installs this file and a .pth line importing it into
the guest image. The cache is keyed by the source text and the interpreter's bytecode magic, so it
returns exactly what compiling that source would; only the file name recorded in the code object
(a temporary payload path) may be the one of an earlier task.
"""
import zipimport

CACHE_DIR = "/var/cache/nfct-zipimport"
_compile_source = zipimport._compile_source


def _cached_compile_source(pathname, source):
    # Imported here: the .pth runs this file in every Python process of the guest.
    import hashlib
    import importlib.util
    import marshal
    import os

    path = os.path.join(CACHE_DIR, hashlib.sha256(importlib.util.MAGIC_NUMBER + source).hexdigest())
    try:
        with open(path, "rb") as cached:
            return marshal.load(cached)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    try:
        os.makedirs(CACHE_DIR, exist_ok=True)
        partial = f"{path}.{os.getpid()}"
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


zipimport._compile_source = _cached_compile_source
