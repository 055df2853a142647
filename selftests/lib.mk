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

run_tests:
	@BASE_DIR=$(RVIO_ROOT)/selftests; . $(KSFT_DIR)/kselftest/runner.sh; \
		run_many $(addprefix ./,$(TEST_PROGS))

.PHONY: all run_tests
