#!/usr/bin/env bash
# The controller venv for Mitogen, shared by tests/mitogen/run.sh and bench/fleet/run.sh (transport mitogen):
# mitogen (NFCT_MITOGEN_VERSION, 0.3.54) with ansible-core (NFCT_MITOGEN_CORE, 2.19.*) under the project cache
# (NFCT_CACHE_DIR, ~/.cache/netfilter-conntrack), installed when missing or another version.
#   source tests/mitogen/venv.sh   sets MITOGEN_VENV, MITOGEN_VERSION and MITOGEN_STRATEGY_DIR
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck disable=SC2034  # the variables are for the scripts that source this file
MITOGEN_VENV="${NFCT_CACHE_DIR:-$HOME/.cache/netfilter-conntrack}/venv-mitogen"
MITOGEN_VERSION="${NFCT_MITOGEN_VERSION:-0.3.54}"
if ! "$MITOGEN_VENV/bin/python" -c "import ansible_mitogen, mitogen; assert mitogen.__version__ == tuple(map(int, '$MITOGEN_VERSION'.split('.')))" 2>/dev/null; then
    printf '[mitogen] installing mitogen %s and ansible-core %s into %s\n' "$MITOGEN_VERSION" \
        "${NFCT_MITOGEN_CORE:-2.19.*}" "$MITOGEN_VENV" >&2
    python3 -m venv "$MITOGEN_VENV"
    "$MITOGEN_VENV/bin/pip" install -q "mitogen==$MITOGEN_VERSION" "ansible-core==${NFCT_MITOGEN_CORE:-2.19.*}"
fi
MITOGEN_STRATEGY_DIR="$("$MITOGEN_VENV/bin/python" -c 'import os, ansible_mitogen.plugins.strategy as s; print(os.path.dirname(s.__file__))')"
