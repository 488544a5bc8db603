# Entry points: `make demo` (set up, then show the modules on a throwaway network namespace)
# and `make test` (set up, then every check CI runs). Run as root on Debian 12.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CACHE ?= $(or $(NFCT_CACHE_DIR),$(HOME)/.cache/netfilter-conntrack)
VENV ?= $(CACHE)/venv-2.19
# Controller matrix (issue 18): one line per ansible-core series in requirements/matrix.txt, with the
# Python that runs its unit and sanity tests; .ci/setup makes $(CACHE)/venv-<series> for each.
MATRIX := $(shell sed -n 's/^\(2\.[0-9]*\) .*/\1/p' requirements/matrix.txt)
matrix_python = $(shell sed -n 's/^$(1) //p' requirements/matrix.txt)
# ansible-test needs the collection at .../ansible_collections/netfilter/conntrack, outside
# any git work tree (inside one it lists files with git and finds none).
TREE := $(CACHE)/tree-$(shell echo $(CURDIR) | md5sum | cut -c1-8)
COLLECTION := $(TREE)/ansible_collections/netfilter/conntrack
export PATH := $(CACHE)/pybin:$(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(TREE)
export ANSIBLE_FORCE_COLOR := 0

.PHONY: setup tree demo test mitogen-test units units-new sanity sanity-new lint integration integration-host integration-isolated integration-ends ee-test docs docs-lint ee-check changelog-lint build-test molecule molecule-host molecule-isolated molecule-image upgrade-test vm-test vm-matrix vm-sites

setup:
	.ci/setup

sync_tree = mkdir -p $(1) && \
	rsync -a --delete --exclude .git --exclude /.tmp --exclude /tests/output --exclude __pycache__ ./ $(1)/
tree:
	$(call sync_tree,$(COLLECTION))

# The units and the sanity stage of each ansible-core series get a copy each ($(TREE)-units-2.16, ...-sanity-2.16),
# so that they can run beside each other and beside the stages that use $(COLLECTION): ansible-test keeps its
# scratch files and the venv of `--venv` in the copy's tests/output/.tmp, which the next run of the stage reuses.
# (That venv stays in the copy: its scripts name the path they were installed at.)
stage_collection = $(TREE)-$(1)/ansible_collections/netfilter/conntrack
stage_tree = $(call sync_tree,$(call stage_collection,$(1)))

demo: setup tree
	ansible-playbook -i localhost, -c local -e ansible_python_interpreter=/usr/bin/python3 demo/demo.yml

# `make test` runs every stage below through .ci/stages, which prints a table of their times at the end (also when
# one fails), and the log of each failed stage. HOST_STAGES change state of this machine that the others read
# (the init namespace's nf_log_all_netns and the global nf_conntrack_max, the kernel log, /run/netfilter-conntrack):
# they run one after another. CHECK_STAGES share no host state with them or with each other (the isolated
# integration targets and Molecule scenarios keep to their own namespaces, containers and scratch paths);
# CHECK_JOBS lanes run them beside the host lane, taking the longest first.
HOST_STAGES := integration-host integration-ends upgrade-test molecule-host
MATRIX_ENDS := $(lastword $(MATRIX)) $(firstword $(MATRIX))
CHECK_STAGES := molecule-image molecule-isolated integration-isolated $(addprefix sanity-,$(MATRIX_ENDS)) $(addprefix units-,$(MATRIX)) \
	$(addprefix sanity-,$(filter-out $(MATRIX_ENDS),$(MATRIX))) lint docs-lint build-test ee-check changelog-lint
CHECK_JOBS ?= 2
test:
	.ci/stages -j $(CHECK_JOBS) -c .ci/host-state -f "setup tree" -s "$(HOST_STAGES)" $(CHECK_STAGES)

# units-<series> and sanity-<series> for every series of the matrix; units-new and sanity-new are the newest.
units: $(addprefix units-,$(MATRIX))
sanity: $(addprefix sanity-,$(MATRIX))
units-new: units-$(lastword $(MATRIX))
sanity-new: sanity-$(lastword $(MATRIX))
# matrix_env SERIES,STAGE: into the stage's copy with the series' venv first on PATH. A series whose Python is
# missing is skipped with a message (.ci/setup said so too).
matrix_env = py=$(call matrix_python,$(1)); \
	if [ ! -x $(CACHE)/pybin/python$$py ] || [ ! -x $(CACHE)/venv-$(1)/bin/ansible-test ]; then \
	  echo "no Python $$py or venv-$(1): skipping ansible-core $(1)"; exit 0; fi; \
	cd $(call stage_collection,$(2)) && export PATH=$(CACHE)/venv-$(1)/bin:$$PATH ANSIBLE_COLLECTIONS_PATH=$(TREE)-$(2)
units-2.%:
	$(call stage_tree,units-2.$*)
	$(call matrix_env,2.$*,units-2.$*) && ansible-test units --venv --python $$py --color no
# Sanity runs every test on the oldest and the newest series. A series between them runs only the tests whose
# verdict depends on the ansible-core it brings (its module_utils, plugin loader, documentation and argument-spec
# schemas), on its own Python: SANITY_SERIES_TESTS. The others give the same verdict whatever the series (the file
# checks, whose code is byte-identical to the oldest's or the newest's, shellcheck, and compile, which depends on
# the Python only: the two ends cover 3.8 - 3.13) or come from linters (pylint, pep8, yamllint) whose pinned
# versions the two ends bracket. `make sanity SANITY_FULL=1` runs every test on every series.
SANITY_SERIES_TESTS := action-plugin-docs ansible-doc import runtime-metadata validate-modules
sanity_scope = $(if $(or $(SANITY_FULL),$(filter $(1),$(MATRIX_ENDS))),, \
	--python $(call matrix_python,$(1)) $(addprefix --test ,$(SANITY_SERIES_TESTS)))
# ansible-test keeps the venvs of the sanity tests in ~/.ansible/test/venv, shared by every series and every
# clone; two runs creating the same one at once break each other. --prime-venvs creates the missing ones,
# under a lock, so that only their creation waits and the tests of several series run at once. Priming makes
# a venv for every Python it finds, even one with nothing to test (pyenv's 2.7 - 3.7, whose shims fail when
# that version is not selected): it sees only the Pythons of $(CACHE)/pybin and the system's.
without_pyenv_shims = PATH=$$(tr : '\n' <<<"$$PATH" | grep -v '/\.pyenv/' | paste -sd:)
sanity-2.%:
	$(call stage_tree,sanity-2.$*)
	$(call matrix_env,2.$*,sanity-2.$*) && \
	$(without_pyenv_shims) flock $(CACHE)/ansible-test-sanity-venvs.lock \
	  ansible-test sanity --venv --color no --prime-venvs $(call sanity_scope,2.$*) $(SANITY_ARGS_2.$*) && \
	ansible-test sanity --venv --color no $(call sanity_scope,2.$*) $(SANITY_ARGS_2.$*)

lint: tree
	cd $(COLLECTION) && ansible-lint --profile production --offline

docs: tree
	docs/build.sh $(COLLECTION)

# The reference in docs/reference is generated from the modules' own documentation and must be current.
docs-lint: tree
	docs/build.sh --lint $(COLLECTION)
	docs/build.sh --check $(COLLECTION)

# The execution-environment definition must give ansible-builder a valid build context.
ee-check:
	d=$$(mktemp -d) && cp meta/execution-environment.yml bindep.txt $$d/ && \
	ansible-builder create -f $$d/execution-environment.yml -c $$d/context >/dev/null && \
	test -f $$d/context/Containerfile && rm -rf $$d && echo "execution environment: build context OK"

changelog-lint:
	antsibull-changelog lint

build-test: tree
	.ci/build-test $(COLLECTION)

# Integration targets run against this machine's kernel in network namespaces they create: every directory under
# tests/integration/targets, or those named in TARGETS (make integration TARGETS="role_debug_netns verdicts").
integration: tree
	.ci/integration $(COLLECTION) $(TARGETS)

# make test splits them: the targets with the alias `isolated` touch no state that other tests share, so they run
# in a copy of their own beside the host lane (integration-isolated); the others change the host (integration-host).
integration-host: tree
	.ci/integration $(COLLECTION) --not-isolated
integration-isolated:
	$(call stage_tree,integration-isolated)
	export ANSIBLE_COLLECTIONS_PATH=$(TREE)-integration-isolated && \
	  .ci/integration $(call stage_collection,integration-isolated) --isolated

# The role's namespace target on the oldest and the newest ansible-core of the matrix.
integration-ends: tree
	for series in $(firstword $(MATRIX)) $(lastword $(MATRIX)); do \
	  PATH=$(CACHE)/venv-$$series/bin:$$PATH .ci/integration $(COLLECTION) role_debug_netns; done

# The execution environment built by ansible-builder from the collection's tarball (tests/ee/build.sh), and the
# enable/collect/revert workflow run in it through ansible-runner as AWX runs sliced jobs, against containers
# reached over ssh, ending with the fleet summary from the fact cache (tests/ee/run.sh). Not part of `make test`:
# see the README for its duration.
ee-test: setup
	tests/ee/build.sh
	tests/ee/run.sh

# The collection's role driven through Mitogen's strategy (tests/mitogen/run.sh). Not part of `make test`.
mitogen-test: setup
	tests/mitogen/run.sh

# Real-kernel tier (qemu, TCG): the targets that need a kernel with dynamic debug and modular
# netfilter, in a Debian 6.1 guest. Not part of `make test`: see the README for its duration.
vm-test: setup
	ANSIBLE_PLAYBOOK=$(VENV)/bin/ansible-playbook tests/vm/run-integration.sh 6.1 \
	  dynamic_debug_site nf_log_backend conntrack_log_invalid

# Kernel matrix (5.10, 6.1, 6.12 under qemu, and this machine's kernel): regenerates docs/compatibility.md.
vm-matrix: setup
	ANSIBLE_BIN=$(VENV)/bin tests/vm/matrix.sh

# Real-kernel proof that revert, by hand and at the deadline, restores every dynamic-debug site the role
# switched on (entries by file + format with \012, C-style escape, func, line range), in a 5.10 guest.
vm-sites: setup
	ANSIBLE_PLAYBOOK=$(VENV)/bin/ansible-playbook tests/vm/window-sites.sh 5.10

# Windows opened by the previous release (found from the git tags, or from the changelog in a clone without
# them), handled by this tree, in network
# namespaces of this machine (issue 20); the systemd-timer side is the Molecule scenario upgrade.
upgrade-test:
	tests/upgrade/run.sh

# The debug role in systemd (and one non-systemd) podman containers from a locally built image: every scenario,
# or those named in SCENARIOS (make molecule SCENARIOS=full_cycle), NFCT_MOLECULE_JOBS at a time (default 2).
molecule:
	extensions/molecule/run-all.sh $(SCENARIOS)

# make test splits them: the scenarios that write state of the host (full_cycle) in the host lane, the others,
# each in containers of its own, beside it.
molecule-host:
	extensions/molecule/run-all.sh --host-state
molecule-isolated:
	extensions/molecule/run-all.sh --no-host-state

# That image (debootstrap, a few minutes the first time on a machine, then nothing): a stage of its own so that
# make test builds it beside the host stages, before molecule needs it.
molecule-image:
	flock $${TMPDIR:-/tmp}/nfct-molecule-image.lock extensions/molecule/build-image.sh
