# SPDX-License-Identifier: GPL-2.0
#
# rvio: Rust kernel modules for a simpler and faster VM network I/O path.
#
#   make setup   install the toolchain and QEMU; build the test kernel
#   make         build every module (*.ko) against the test kernel (or KDIR=)
#   make demo    build, boot the test VM and run the current demo
#   make check   build, then run all tests; ends with "N passed, N failed"
#   make help    everything else
#
# The kernel tree and toolchain live outside the repository, under
# $(RVIO_CACHE) (default ~/.cache/rvio); see docs/build.md.

KMAKE := $(CURDIR)/scripts/kmake.sh M=$(CURDIR)

all: modules

modules:
	+$(KMAKE) modules

# Build with clippy as the Rust compiler (the kernel's CLIPPY=1).
clippy:
	+$(KMAKE) CLIPPY=1 modules

# Format every Rust file as the kernel's .rustfmt.toml says; `make style`
# checks rustfmt and clippy (make check does too).
rustfmt:
	scripts/style.sh --fix

style:
	scripts/style.sh

# Kbuild's clean also removes the generated bindings (they are `targets`).
clean:
	+$(KMAKE) clean

setup:
	scripts/setup.sh

kernel:
	scripts/build-kernel.sh

# `make check` and `make demo` start with `setup`, which only checks what is
# there once everything is installed and built.
check: setup
	+$(MAKE) modules
	scripts/check.sh $(TESTS)

# The same tests in one VM of two vCPUs (SMP; about 1.6 times longer):
# after a change to locking, work items or teardown (docs/build.md).
check-smp: setup
	+$(MAKE) modules
	RVIO_CHECK_VMS=1 scripts/check.sh $(TESTS)

demo: setup
	+$(MAKE) modules
	scripts/vm-run.sh --name demo -- scripts/demo.sh

# Interactive shell in the test VM, with our modules built.
vm: setup
	+$(MAKE) modules
	scripts/vm-run.sh --igb --name shell

# Envelope switching benchmark (not a test): results/envelope/, table in results/README.md.
bench-envelope: setup
	+$(MAKE) modules
	scripts/bench-envelope.sh $(or $(REPEAT),3)

# VMPI benchmark (not a test): results/vmpi/, table in results/README.md.
bench-vmpi: setup
	+$(MAKE) modules
	scripts/bench-vmpi.sh $(or $(REPEAT),3)

# qemu-system-x86_64 from Debian's QEMU source with qemu/*.patch (VMPI's
# device id through vhost-vdpa-device), cached under ~/.cache/rvio/qemu.
qemu:
	scripts/build-qemu.sh

# The ring-level hostile guest, long (HOSTILE_ROUNDS=1000 random rounds from
# HOSTILE_SEED, default a fresh random seed that it prints): scripts/hostile.sh.
hostile: setup
	+$(MAKE) modules
	scripts/hostile.sh

# Fuzz the pure-logic parsers (libFuzzer, stable toolchain); FUZZ_SECS per target.
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_SECS),60)
	+$(MAKE) hostile

help:
	@sed -n '3,12p' Makefile | sed 's/^# \{0,1\}//'
	@echo "  make check-smp  the tests in one VM of two vCPUs (SMP, slower)"
	@echo "  make qemu       qemu-system-x86_64 patched to serve VMPI's device id (docs/vmpi-vmm.md)"
	@echo "  make clippy  build the modules with clippy (CLIPPY=1)"
	@echo "  make rustfmt format every Rust file (the kernel's .rustfmt.toml)"
	@echo "  make style   check rustfmt and clippy (also part of make check)"
	@echo "  make kernel  (re)build the cached test kernel only"
	@echo "  make vm      interactive shell in the test VM"
	@echo "  make fuzz    fuzz the parsers of untrusted bytes (FUZZ_SECS=60 per target), then make hostile"
	@echo "  make hostile the ring-level hostile guest, 1000 random rounds (HOSTILE_ROUNDS=, HOSTILE_SEED=)"
	@echo "  make bench-vmpi  VMPI vs UDP/veth and virtio-net/vdpa_sim_net (REPEAT=3): results/vmpi/"
	@echo "  make bench-envelope  guest-to-guest UDP/TCP: the envelope switch vs a Linux bridge (REPEAT=3): results/envelope/"
	@echo "  make check TESTS=env/igb_sriov.sh   run one test (or a collection: TESTS=env)"

.PHONY: all modules clippy rustfmt style clean setup kernel check check-smp demo vm fuzz hostile bench-vmpi bench-envelope qemu help
