# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the get-pip.py bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from a file server these machines cannot reach, but looks
for ~/.ansible/test/cache/get_pip_<X>_<Y>.py first. .ci/setup installs this file under that
name next to the pip wheel of that version (from PyPI); it installs pip from the wheel
and then the packages ansible-test asked for, like get-pip.py would.
"""

from __future__ import annotations

import glob
import os
import sys

version = os.path.basename(__file__)[len("get_pip_"):-len(".py")].replace("_", ".")
wheels = glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"pip-{version}-*.whl"))
if not wheels:
    sys.exit(f"pip {version} wheel missing next to {__file__}: run .ci/setup")
sys.path.insert(0, wheels[0])

from pip._internal.cli.main import main as pip_main  # noqa: E402  (importable only from the wheel)

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
sys.exit(pip_main(["install", wheels[0]] + args))
