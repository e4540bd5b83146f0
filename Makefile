# Decoupled — the two commands of the quick start are `make run` and `make test`.
SWIFT     ?= swift
# Swift through scripts/swift.sh: the same command, without SwiftPM's warnings about files in
# dependencies' checkouts that only those packages could exclude.
SWIFTQ     = SWIFT=$(SWIFT) scripts/swift.sh
JOBS      ?= $(shell nproc)
RELEASE    = .build/release/decoupled

.PHONY: all deps build release run test test-neon bench clean plugins data install uninstall

all: release

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFTQ) build

release: deps
	$(SWIFTQ) build -c release --product decoupled

# The full Fashion-MNIST (60 000 + 10 000) as HDF5, from the Debian package dataset-fashion-mnist
# that `make deps` installs; git-ignored. Chunked without compression: decoding gzip would
# cost more than training on it.
FULL_DATA = datasets/fashion-mnist.h5
data: $(FULL_DATA)
$(FULL_DATA): | release
	$(RELEASE) data import fashion-mnist --output $@.tmp --layout chunked && mv $@.tmp $@

# The default experiment (see README): the decoupling study on the full Fashion-MNIST when
# the Debian package is there (make deps installs it), else on the shipped subset.
run: release plugins
	@if [ -d /usr/share/datasets/fashion-mnist ]; then $(MAKE) -s data; fi
	$(RELEASE) study

# Every plugins/NAME/ with a Makefile: adding a plugin needs no edit here.
PLUGINS = $(patsubst %/Makefile,%,$(sort $(wildcard plugins/*/Makefile)))
REPLAY_INPUT = Tests/DecoupledTrainingTests/Fixtures/reference/torch-adamw-const.h5

# External plugins build with one command each, against the C ABI header only.
plugins:
	@for p in $(PLUGINS); do $(MAKE) -s -C $$p || exit 1; done

# The NEON kernels on any machine: cross-compiled for AArch64 and run under qemu-user, bit for
# bit against the scalar reference (Tests/kernels-cross); a few seconds.
test-neon: deps
	@$(MAKE) -s -C Tests/kernels-cross test

test: deps plugins test-neon
	@for p in $(PLUGINS); do $(MAKE) -s -C $$p test || exit 1; done
	$(SWIFTQ) build --build-tests
	$(SWIFTQ) test --skip-build
	@# A replay job that loads both external plugins by name from a config, no recompilation.
	.build/debug/decoupled replay examples/replay-adamw-l1.toml --input $(REPLAY_INPUT) --output .build/replay-adamw-l1.h5
	.build/debug/decoupled replay examples/replay-lion.toml --input $(REPLAY_INPUT) --output .build/replay-lion.h5

# `make install PREFIX=… [DESTDIR=…]`: the release binary, the external plugins and the shipped
# examples, datasets and scripts (layout and file list: scripts/install.sh). The binary finds
# them relative to its own location, so it runs from any directory.
PREFIX ?= /usr/local
install: release plugins
	scripts/install.sh install "$(DESTDIR)$(PREFIX)" $(RELEASE) $(addsuffix /build/*.so,$(PLUGINS))

uninstall:
	scripts/install.sh uninstall "$(DESTDIR)$(PREFIX)"

bench: release
	$(RELEASE) bench kernels

clean:
	rm -rf .build
	@for p in $(PLUGINS); do $(MAKE) -s -C $$p clean; done
