# foundation.runners: the two commands for a fresh machine are `make lab` and `make test`.
SHELL := /bin/bash
export FR_CACHE ?= $(HOME)/.cache/foundation-runners
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.ansible/collections
export ANSIBLE_CONFIG := $(CURDIR)/tests/ansible.cfg
# Ansible's home (molecule's copy of the collection, tmp, ssh control sockets) inside the clone: a copy that an
# older clone left in ~/.ansible would otherwise shadow this one for ansible-lint.
export ANSIBLE_HOME := $(CURDIR)/.ansible/home
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTEST := tools/pytest

TEST_PARTS := test-lint test-sanity test-unit test-forgejo test-runner test-libvirt test-molecule test-k8s test-vault test-failover test-monitoring test-logs test-e2e test-builds
# How make test runs them: A,B is A then B; + puts lanes beside each other (tools/timed). Two lanes from the start:
# the e2e part on a forge, Vault and control plane of its own (tests/lab/e2e.env), then logs and failover on hosts
# of their own; beside it every other part in turn, lint, sanity and unit first (k8s on a forge of its own,
# tests/lab/k8s.env), monitoring last (a forge and Prometheus of its own). A third lane beside them slowed the
# e2e part's TCG guest more than it gained (tests/bench/README.md), and three busy lanes (load 5 to 9) failed a
# failover test.
TEST_PLAN := test-lint,test-sanity,test-unit,test-forgejo,test-runner,test-vault,test-libvirt,test-molecule,test-k8s,test-monitoring+test-e2e,test-logs,test-failover test-builds

# Each part's time limit in make test (tools/timed), so that a hung part fails alone: about twice its time on a
# fresh machine, where a part also waits for the background builds it needs (the Vault build takes about 30 min).
export TIMED_LIMITS := test-lint=600 test-sanity=900 test-unit=900 test-forgejo=2400 test-runner=2400 \
  test-vault=3600 test-libvirt=3000 test-molecule=3000 test-k8s=3600 test-monitoring=1200 test-e2e=5400 \
  test-logs=1200 test-failover=2400 test-builds=3600

.PHONY: deps lab lab-down test test-extended fresh-check $(TEST_PARTS) bench bench-prune bench-failover

deps:
	@tools/bootstrap.sh

## Bring up the lab (forge, mirror, Vault, crunchy01 as a Debian 13 systemd KVM host) and converge site.yml on it.
## The playbooks get the forge's token from the lab Vault, as in production (forge_tokens.yml derives it from the
## admin password there); the forge's own token variables are unset for them.
lab: deps
	tests/lab/lab up
	eval "$$(tests/lab/lab env)" && unset $$(compgen -v FORGE_GITEA_TOKEN_) && \
	  ansible-playbook -i inventory/lab playbooks/forge_tokens.yml && \
	  ansible-playbook -i inventory/lab playbooks/site.yml

## Stop everything the lab started; keeps the build cache.
lab-down:
	tests/lab/lab down

## make lab, then make test, in a new clone of HEAD with the lab's caches and state emptied first
## (FRESH_ARGS=--warm keeps the caches).
fresh-check:
	tools/fresh-check $(FRESH_ARGS)

## Everything CI runs, with the time each part took.
test: deps
	@tests/lab/prebuild start
	@tools/timed $(TEST_PLAN)

## make test with the extended tier as well (tests/lablib/tiers.py): every kill and crash point, every bad input of
## the e2e part, the standby VM on brix02 and the VM replaced on the prepared base.
test-extended:
	FR_EXTENDED=1 $(MAKE) test

## The lab builds that make test started in the background: each one's time; fails if one failed.
test-builds:
	tests/lab/prebuild wait

test-lint: deps
	yamllint -s .
	ruff check .
	ruff format --check .
	git ls-files -z | xargs -0 grep -lZ '^#!/usr/bin/env bash' | xargs -0 shellcheck
	ansible-lint

test-sanity: deps
	tools/sanity.sh

test-unit: deps
	$(PYTEST) --timeout=300 tests/unit

test-forgejo: deps
	tests/lab/forge up
	$(PYTEST) tests/integration/forgejo; rc=$$?; cat tests/output/forgejo-summary.txt; exit $$rc

## The lab runner: go test, then real jobs on the lab forge (host, docker), drain, identity, capacity.
test-runner: deps
	tests/lab/forge up
	tests/lab/build-forge test
	$(PYTEST) tests/integration/runner

test-libvirt: deps
	tests/lab/libvirt up
	$(PYTEST) tests/integration/libvirt

# Molecule installs its own copy of the collection under Ansible's home: a home of its own keeps that copy from
# shadowing the clone for ansible-lint and ansible-playbook. Each scenario runs on its own, with its time printed.
MOLECULE := ANSIBLE_HOME=$(CURDIR)/.ansible/molecule-home molecule
test-molecule: deps
	tests/lab/forge up
	@failed=0 took=(); for scenario in $$(ls molecule | grep -vx shared); do start=$$SECONDS; \
	  if $(MOLECULE) test -s "$$scenario"; then s=ok; else s=FAILED failed=1; fi; \
	  took+=("molecule $$scenario: $$s in $$((SECONDS - start)) s"); done; printf '%s\n' "$${took[@]}"; exit $$failed

## k3s_heavy_runner against the lab's kube-apiserver (kine, kwok-simulated pods) and a lab forge of its own.
test-k8s: deps
	set -a && . tests/lab/k8s.env && set +a && tests/lab/forge up && tests/lab/k8s up && \
	  { $(PYTEST) tests/integration/k8s; rc=$$?; tests/lab/k8s down; exit $$rc; }

## The production inventory's secrets path against the lab's real Vault (built in the background by make test's
## prebuild) and the lab forge: forge_tokens.yml, then forge.yml reading its token from Vault.
test-vault: deps
	tests/lab/forge up
	tests/lab/vault up
	$(PYTEST) tests/integration/vault

## failover.yml and the standby watchdog: a private lab forge, a runner process and an nspawn systemd host.
test-failover: deps
	$(PYTEST) tests/integration/failover; rc=$$?; cat tests/output/failover-summary.txt; exit $$rc

## The alerting rules in a real Prometheus (Debian's), fed by the forge metrics program through node_exporter, on a
## forge of its own: a fenced runner stopped fires FencedRunnerNoneOnline after its 2 minutes.
test-monitoring: deps
	$(PYTEST) tests/integration/monitoring

## log_shipping's rsyslog files in real rsyslogd (Debian's) in lab namespaces: a sender, the relay and Graylog's
## input; each hop down for a while, every line arrives once.
test-logs: deps
	$(PYTEST) -s tests/integration/logs

## site.yml end to end: converged from nothing on the lab, fenced jobs in the runner VM, flushes, re-runs,
## a fresh controller, secrets, the bridge rule, the cutover from runner-01, bad inputs, an upgrade, day one on the
## production replica, the standby on brix02, and the VM replaced on the prepared base.
test-e2e: deps
	$(PYTEST) -s tests/integration/e2e

bench: deps bench-prune bench-failover
	tests/lab/libvirt up
	.venv/bin/python tests/bench/vm_provisioning.py

## Failover latency and fail-back drain time of the standby watchdog on the failover lab (FAILOVER_ARGS=--rounds N).
bench-failover: deps
	.venv/bin/python tests/bench/failover.py $(FAILOVER_ARGS)

## Push-to-start and start-to-result of host and container jobs on the lab runner (RUNNER_BENCH_ARGS=--rounds N).
.PHONY: bench-runner
bench: bench-runner
bench-runner: deps
	tests/lab/forge up
	.venv/bin/python tests/bench/runner_jobs.py $(RUNNER_BENCH_ARGS)

## Prune 5,000 offline runner registrations on the lab forge: the module against a bare client (PRUNE_ARGS=...).
bench-prune: deps
	.venv/bin/python tests/bench/prune.py $(PRUNE_ARGS)

## Cold site.yml to runner online against a bare guest boot, the no-op re-run against a facts-only play,
## and push-to-job-start of a fenced job, on the lab (SITE_BENCH_ARGS=--rounds N).
.PHONY: bench-site
bench: bench-site
bench-site: deps
	.venv/bin/python tests/bench/site.py $(SITE_BENCH_ARGS)
