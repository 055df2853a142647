#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Our out-of-tree Rust modules load, call each other through a C-ABI
# exported with EXPORT_SYMBOL_GPL, pin each other while in use, and unload.
source "$(dirname "$0")/../lib.sh"

provider=$(rvio_ko rvio_test_provider)
consumer=$(rvio_ko rvio_test_consumer)

cleanup() {
	rmmod rvio_test_consumer 2>/dev/null
	rmmod rvio_test_provider 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
[ -f "$provider" ] && [ -f "$consumer" ] ||
	ktap_exit_fail_msg "test modules not built: run 'make' at the top of the repository"
cleanup
ktap_set_plan 5

expect_fail_with "Unknown symbol" insmod "$consumer"
ktap_test_result "consumer without its provider is refused" [ $? = 0 ]

ktap_test_result "provider (Rust crate + C exports) loads" insmod "$provider"

klog_mark
if insmod "$consumer" && klog_since_mark | grep -q "rvio_test_consumer: cross-module calls ok"; then
	ktap_test_pass "consumer's calls through the provider's C-ABI return what the API says"
else
	klog_since_mark | sed 's/^/# /'
	ktap_test_fail "consumer's calls through the provider's C-ABI return what the API says"
fi

expect_fail_with "in use" rmmod rvio_test_provider
ktap_test_result "provider is pinned while the consumer is loaded" [ $? = 0 ]

ktap_test_result "both unload" eval "rmmod rvio_test_consumer && rmmod rvio_test_provider"

ktap_finished
