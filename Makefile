# qemu-tiers: a thin front end.  The real work is in scripts/ and meson.
#
#   make run     set up the host, build the fork, boot the Debian guest
#                (ACCEL=tcg|kvm, SMP=N, MACHINE=pc|q35)
#   make check   set up, build fork + vanilla twin, run every test
#   make bench   set up, build both, run bench/ (BENCH_REPS, BENCH_CONFIGS;
#                bench/external.py: external handlers; bench/linux.py: the
#                Debian kernel reading its clock; bench/events.py:
#                platform events per handler kind; bench/ras.py: RAS
#                page retirement)
#   make build   build both QEMUs, the guest, the bench guest and the
#                libvirt examples (build/libvirt/, docs/libvirt.rst)
#   make install install the fork (PREFIX=/usr/local, DESTDIR; see
#                scripts/install.sh); make uninstall removes it
#   make deb     Debian packages of the fork in build/deb/
#   make clean   remove build/ and qemu/ (downloads are kept)
#
# Set-up is by need: every target installs what building and running the
# fork needs (setup-host.sh run); make check also what only the tests need
# (setup-host.sh check: libvirt, python3-libvirt, pycotap, lintian).

ACCEL ?= tcg
SMP ?= 1
MACHINE ?= pc
BENCH_REPS ?= 5
BENCH_CONFIGS ?= tcg-smp1,tcg-smp2,tcg-smp2-ap-pic,kvm-smp1,kvm-irqchip-split-smp1,tcg-smp1-routes-10,tcg-smp1-routes-1000,tcg-smp1-routes-10000,kvm-smp1-ignore-write
export ACCEL SMP MACHINE

S := scripts
TIERS := build/tiers

.PHONY: libvirt-examples all run check check-diff-long check-external-long check-sanitize bench build build-fork build-vanilla setup setup-check fetch tiers install uninstall deb clean distclean

all: build

setup:
	@$(S)/setup-host.sh run

setup-check:
	@$(S)/setup-host.sh check

fetch: setup
	@$(S)/fetch-upstream.sh
	@$(S)/fetch-guest.sh

build-fork: fetch
	@$(S)/build-qemu.sh fork

build-vanilla: fetch
	@$(S)/build-qemu.sh vanilla

# Our own meson project: the bench guest and the host-side tests.
tiers: setup
	@$(S)/setup-tiers.sh

# The libvirt examples of docs/libvirt/ with this checkout's paths.
libvirt-examples: build-fork
	@$(S)/libvirt-examples.sh

build: build-fork build-vanilla tiers libvirt-examples

run: build-fork
	@QT_QEMU=fork $(S)/run-guest.sh

check: setup-check build
	@$(S)/check.sh

# The fork, its firmware links, trace events, the external-handler
# library and example (scripts/install.sh: PREFIX, DESTDIR).
install: build-fork tiers
	@$(S)/install.sh

uninstall:
	@$(S)/uninstall.sh

# qemu-tiers-system-x86 and qemu-tiers-exit-handler-dev (scripts/make-deb.sh).
deb: build-fork tiers
	@$(S)/make-deb.sh

# The kernel tier's differential test with 10^7 operations per device,
# each device in its own process, two at a time (make check runs 10^6).
check-diff-long: build
	@$(S)/check-diff-long.sh

# The external-handler qtest with 1000 SIGKILLs of a pool member (make
# check runs 100).
check-external-long: build
	@QT_EXIT_KILLS=1000 QT_BUILD_DIR=$(CURDIR)/build \
	    QT_EXIT_HANDLER=$(CURDIR)/$(TIERS)/accel/route/libexithandler/exit-handler-post \
	    tests/run-qtest.sh fork exit-handler-test

# The fork under sanitizers (its own build directory):
#   make check-sanitize SANITIZE=asan   (AddressSanitizer + UBSan)
#   make check-sanitize SANITIZE=tsan   (ThreadSanitizer)
SANITIZE ?= asan
check-sanitize: fetch tiers
	@$(S)/check-sanitize.sh $(SANITIZE)

bench: build
	@python3 bench/run.py --guest $(TIERS)/bench/bench-guest.elf \
	    --reps $(BENCH_REPS) --configs $(BENCH_CONFIGS) --markdown build/bench-results.md
	@python3 bench/external.py --guest $(TIERS)/bench/bench-guest.elf \
	    --reps $(BENCH_REPS) --markdown build/bench-external.md
	@python3 bench/linux.py --reps $(BENCH_REPS) --markdown build/bench-linux.md
	@python3 bench/events.py --reps $(BENCH_REPS) --markdown build/bench-events.md
	@python3 bench/ras.py --reps $(BENCH_REPS) --markdown build/bench-ras.md
	@python3 bench/ivq.py --reps $(BENCH_REPS) --markdown build/bench-ivq.md

clean:
	rm -rf build/qemu-fork build/qemu-vanilla build/tiers build/run build/guest build/deb qemu

distclean:
	rm -rf build qemu
