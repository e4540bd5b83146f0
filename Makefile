# Decoupled — the two commands of the quick start are `make run` and `make test`.
SWIFT     ?= swift
JOBS      ?= $(shell nproc)
RELEASE    = .build/release/decoupled

.PHONY: all deps build release run test bench clean

all: release

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product decoupled

# The default experiment (see README).
run: release
	$(RELEASE) bench kernels --sizes 1e5,1e6,1e7

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: release
	$(RELEASE) bench kernels

clean:
	rm -rf .build
