#!/usr/bin/env bash
# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Module and role reference, generated from the modules' DOCUMENTATION/EXAMPLES/RETURN and the role's
# meta/argument_specs.yml with antsibull-docs, so that the docs cannot drift from the code.
#
# usage: docs/build.sh [--check | --lint] COLLECTION_PATH
#
#   COLLECTION_PATH  the collection at .../ansible_collections/netfilter/conntrack (antsibull-docs and
#                    ansible-doc find collections only below an ansible_collections/ directory), for
#                    example the copy `make tree` keeps up to date.
#   (no flag)        write the reference to docs/reference/ next to this script (simplified RST that
#                    GitHub renders, one page per module and role, plus index.rst). Re-runnable: the
#                    directory is replaced, the output carries no version stamp or path, so it is
#                    byte-identical for the same sources.
#   --check          build into a temporary directory and fail (exit 1, with a diff) when docs/reference/
#                    differs: the CI check that the committed reference is up to date.
#   --lint           run `antsibull-docs lint-collection-docs --plugin-docs` on COLLECTION_PATH (plugin
#                    and role docs, semantic markup, references, docs/docsite/ extra docs and links).
#
# Needs antsibull-docs and ansible-core on PATH (the Makefile's venv); ANTSIBULL_DOCS overrides the
# antsibull-docs command. Errors in the documentation fail the build instead of producing error pages.
set -euo pipefail

usage() {
    sed -n 's/^# \{0,1\}//; 9,22p' "$0" >&2
    exit 2
}

mode=build
case "${1:-}" in
    --check) mode=check; shift ;;
    --lint) mode=lint; shift ;;
    -h | --help) usage ;;
    -*) echo "docs/build.sh: unknown option $1" >&2; usage ;;
esac
[ $# -eq 1 ] || usage

collection=$(cd "$1" && pwd -P)
script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
reference_dir=$script_dir/reference
antsibull_docs=${ANTSIBULL_DOCS:-antsibull-docs}

name=$(basename "$collection")
namespace=$(basename "$(dirname "$collection")")
tree=$(dirname "$(dirname "$(dirname "$collection")")")
if [ "$(basename "$(dirname "$(dirname "$collection")")")" != ansible_collections ] || [ ! -f "$collection/galaxy.yml" ]; then
    echo "docs/build.sh: $collection is not a collection at .../ansible_collections/<namespace>/<name> with a galaxy.yml" >&2
    exit 2
fi
for tool in "$antsibull_docs" ansible-doc; do
    if ! command -v "$tool" >/dev/null; then
        echo "docs/build.sh: $tool not found on PATH (install antsibull-docs and ansible-core, or use the Makefile's venv)" >&2
        exit 2
    fi
done

# Only this tree: a collection of the same name elsewhere on the path must not be documented instead.
export ANSIBLE_COLLECTIONS_PATH=$tree
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_FORCE_COLOR=0

if [ "$mode" = lint ]; then
    cd "$collection"
    exec "$antsibull_docs" lint-collection-docs --plugin-docs --validate-collection-refs=self \
        --check-extra-docs-refs .
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -m 0755 "$work/out"

"$antsibull_docs" collection \
    --use-current \
    --output-format simplified-rst \
    --squash-hierarchy \
    --no-add-antsibull-docs-version \
    --fail-on-error \
    --dest-dir "$work/out" \
    "$namespace.$name" >"$work/log" 2>&1 || {
    cat "$work/log" >&2
    echo "docs/build.sh: antsibull-docs failed (see above)" >&2
    exit 1
}

if [ "$mode" = check ]; then
    if ! diff -ru "$reference_dir" "$work/out" >"$work/diff"; then
        cat "$work/diff"
        echo "docs/build.sh: docs/reference/ is out of date; run docs/build.sh $1 (make docs) and commit it" >&2
        exit 1
    fi
    echo "docs/reference/ is up to date"
    exit 0
fi

mkdir -p "$reference_dir"
find "$reference_dir" -mindepth 1 -delete
cp -R "$work/out/." "$reference_dir/"
echo "wrote $(find "$reference_dir" -type f | wc -l) files to $reference_dir"
