#!/usr/bin/env bash
# The two collections an upgrade test needs, each installed into its own collections path.
#   collections.sh previous               print the previous release's tag
#   collections.sh old DEST               install the previous release (built from `git archive TAG`) under DEST
#   collections.sh current DEST           install this working tree's collection under DEST
# DEST then holds ansible_collections/netfilter/conntrack: point ANSIBLE_COLLECTIONS_PATH at DEST.
#
# The previous release is the highest release tag (X.Y.Z) that is an ancestor of HEAD and is not this
# code itself: its galaxy.yml version differs from HEAD's, or, when galaxy.yml has not been bumped yet
# after a release, its tree differs from HEAD's (HEAD is that release plus unreleased commits). On the
# release commit itself (tag at HEAD) that tag is skipped and the one before it is taken.
# A clone made without tags (git clone --no-tags, a CI checkout of one branch) still knows its releases:
# each release X.Y.Z is then the commit that added X.Y.Z to changelogs/changelog.yaml (what
# antsibull-changelog release commits). A shallow clone is deepened from its origin first, since neither
# tags nor the changelog's history reach past its depth.
# NFCT_UPGRADE_FROM=TAG or VERSION (a release of the changelog) overrides the choice.
# Copyright (c) 2026, netfilter.conntrack contributors
# SPDX-License-Identifier: GPL-3.0-or-later
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
GALAXY="${ANSIBLE_GALAXY:-ansible-galaxy}"

version_at() { git -C "$ROOT" show "$1:galaxy.yml" | sed -n 's/^version:[[:space:]]*//p' | tr -d "\"'" | head -n 1; }

# release_commits: "VERSION COMMIT" per release, highest first: from the release tags, or, in a clone
# without them, from the commits that released each version in the changelog.
release_commits() {
    local tags version commit
    tags="$(git -C "$ROOT" tag --list | grep -E '^v?[0-9]+\.[0-9]+\.[0-9]+$' | sort -rV || true)"
    if [[ -n "$tags" ]]; then
        for version in $tags; do echo "$version $(git -C "$ROOT" rev-parse "$version^{commit}")"; done
        return
    fi
    echo "no release tags in this clone: the releases are read from changelogs/changelog.yaml's history" >&2
    for version in $(git -C "$ROOT" show HEAD:changelogs/changelog.yaml |
        sed -n 's/^  \([0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*\):$/\1/p' | sort -rV); do
        commit="$(git -C "$ROOT" log --reverse --format=%H -S"  $version:" HEAD -- changelogs/changelog.yaml |
            head -n 1)"
        [[ -n "$commit" ]] && echo "$version $commit"
    done
}

previous_release() {
    if [[ "$(git -C "$ROOT" rev-parse --is-shallow-repository)" == true ]]; then
        echo "shallow clone: fetching the full history and tags from origin" >&2
        git -C "$ROOT" fetch --quiet --unshallow --tags origin ||
            { echo "cannot deepen this shallow clone: the previous release is not in it" >&2; return 1; }
    fi
    local head_version version commit
    if [[ -n "${NFCT_UPGRADE_FROM:-}" ]]; then
        if git -C "$ROOT" rev-parse --verify --quiet "refs/tags/$NFCT_UPGRADE_FROM" >/dev/null; then
            echo "$NFCT_UPGRADE_FROM $(git -C "$ROOT" rev-parse "$NFCT_UPGRADE_FROM^{commit}")"
            return
        fi
        while read -r version commit; do
            [[ "$version" == "${NFCT_UPGRADE_FROM#v}" || "$version" == "$NFCT_UPGRADE_FROM" ]] &&
                { echo "$version $commit"; return; }
        done < <(release_commits)
        echo "NFCT_UPGRADE_FROM=$NFCT_UPGRADE_FROM is neither a tag nor a release in changelogs/changelog.yaml" >&2
        return 1
    fi
    head_version="$(version_at HEAD)"
    while read -r version commit; do
        git -C "$ROOT" merge-base --is-ancestor "$commit" HEAD || continue
        if [[ "$(version_at "$commit")" != "$head_version" ]] ||
            ! git -C "$ROOT" diff --quiet "$commit" HEAD --; then
            echo "$version $commit"
            return
        fi
    done < <(release_commits)
    echo "no release before HEAD (version $head_version): nothing to upgrade from" >&2
    return 1
}

# build DIR DEST: build the collection whose galaxy.yml is in DIR and install it under DEST.
build_and_install() (
    src=$1 dest=$2
    out="$(mktemp -d "${TMPDIR:-/tmp}/nfct-upgrade-build.XXXXXX")"
    trap 'rm -rf "$out"' EXIT
    "$GALAXY" collection build "$src" --output-path "$out" --force >/dev/null
    mkdir -p "$dest"
    # Only DEST may count, or galaxy finds the collection elsewhere on the path and installs nothing.
    ANSIBLE_COLLECTIONS_PATH="$dest" "$GALAXY" collection install --offline --no-deps --force \
        -p "$dest" "$out"/netfilter-conntrack-*.tar.gz >/dev/null
    test -f "$dest/ansible_collections/netfilter/conntrack/MANIFEST.json"
)

case "${1:-}" in
previous)
    previous_release | cut -d' ' -f1
    ;;
old)
    [[ -n "${2:-}" ]] || { echo "usage: $0 old DEST" >&2; exit 2; }
    read -r version commit < <(previous_release)
    [[ -n "${commit:-}" ]] || exit 1
    src="$(mktemp -d "${TMPDIR:-/tmp}/nfct-upgrade-src.XXXXXX")"
    trap 'rm -rf "$src"' EXIT
    git -C "$ROOT" archive "$commit" | tar -x -C "$src"
    build_and_install "$src" "$2"
    echo "$version"
    ;;
current)
    [[ -n "${2:-}" ]] || { echo "usage: $0 current DEST" >&2; exit 2; }
    build_and_install "$ROOT" "$2"
    echo "$(version_at HEAD)+$(git -C "$ROOT" rev-parse --short HEAD)"
    ;;
*)
    echo "usage: $0 previous | old DEST | current DEST" >&2
    exit 2
    ;;
esac
