# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""barrier.py FD AFTER_PATH|- TIMEOUT ARGV...: block until FD reaches EOF (the barrier opens), then
until AFTER_PATH exists (unless -), then exec ARGV. Used to start playbook runs at one instant."""

import os
import sys
import time

os.read(int(sys.argv[1]), 1)
after, timeout = sys.argv[2], float(sys.argv[3])
limit = time.monotonic() + timeout
while after != "-" and not os.path.exists(after):
    if time.monotonic() > limit:
        sys.exit(f"barrier: {after} did not appear within {timeout}s")
    time.sleep(0.05)
os.execvp(sys.argv[4], sys.argv[4:])
