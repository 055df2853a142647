# SPDX-License-Identifier: GPL-2.0
#
# Included by each collection's Makefile (selftests/<collection>/Makefile).
# `make run_tests` runs TEST_PROGS through the kernel's own kselftest runner
# (tools/testing/selftests/kselftest/runner.sh of the rvio kernel tree), so
# the output is the KTAP that kselftest users know, with per-collection
# `settings` (timeout) honoured.
RVIO_ROOT := $(realpath $(dir $(lastword $(MAKEFILE_LIST)))/..)
KSFT_DIR ?= $(shell bash -c '. $(RVIO_ROOT)/scripts/lib.sh && rvio_kdir')/tools/testing/selftests
export KSFT_DIR

all:

# The runner finds its helpers (prefix.pl) and a collection's `settings`
# under one BASE_DIR, as in an installed kselftest tree: build that tree
# from two symlinks in /tmp (the repository may be read-only in the VM).
run_tests:
	@base=$$(mktemp -d /tmp/rvio-ksft.XXXXXX) && \
	ln -s $(KSFT_DIR)/kselftest $$base/kselftest && \
	ln -s $(CURDIR) $$base/$(notdir $(CURDIR)) && \
	cd $$base/$(notdir $(CURDIR)) && \
	BASE_DIR=$$base && . $(KSFT_DIR)/kselftest/runner.sh && \
	run_many $(addprefix ./,$(TEST_PROGS)); \
	st=$$?; rm -rf "$$base"; exit $$st

.PHONY: all run_tests
