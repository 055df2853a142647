# SPDX-License-Identifier: GPL-2.0
#
# Included by each collection's Makefile (selftests/<collection>/Makefile).
# `make run_tests` runs TEST_PROGS through the kernel's own kselftest runner
# (tools/testing/selftests/kselftest/runner.sh of the rvio kernel tree), so
# the output is the KTAP that kselftest users know, with per-collection
# `settings` (timeout) honoured.
RVIO_ROOT := $(realpath $(dir $(lastword $(MAKEFILE_LIST)))/..)
run_tests: export KSFT_DIR ?= $(shell bash -c '. $(RVIO_ROOT)/scripts/lib.sh && rvio_kdir')/tools/testing/selftests

all:

# The runner finds its helpers (prefix.pl) and a collection's `settings`
# under one BASE_DIR, as in an installed kselftest tree: build that tree
# from two symlinks in /tmp (the repository may be read-only in the VM).
#
# The runner's run_many always returns 0: the status here is 1 if a program
# failed (a top-level `not ok` line), so a failure is seen without parsing.
run_tests:
	@base=$$(mktemp -d /tmp/rvio-ksft.XXXXXX) && \
	ln -s $(KSFT_DIR)/kselftest $$base/kselftest && \
	ln -s $(CURDIR) $$base/$(notdir $(CURDIR)) && \
	cd $$base/$(notdir $(CURDIR)) && \
	BASE_DIR=$$base && . $(KSFT_DIR)/kselftest/runner.sh && \
	{ run_many $(addprefix ./,$(TEST_PROGS)) | tee "$$base/ktap"; } && \
	! grep -q '^not ok [0-9]* selftests: ' "$$base/ktap"; \
	st=$$?; rm -rf "$$base"; exit $$st

# The programs run_tests runs, for scripts/check.sh to count.
list_tests:
	@echo $(TEST_PROGS)

.PHONY: all run_tests list_tests
