# Thin wrapper over CMake. `make run` and `make test` each start with
# scripts/bootstrap, so either works on a fresh Debian 12 machine.
#   make               set-up and build into build/
#   make run           ... then serve with embedded defaults (./data, 127.0.0.1:50051)
#   make test          ... then run every test
#   make test SANITIZE=address,undefined   the same, built with sanitizers in build-address-undefined/
#   make bench         ... then run every benchmark of the performance table (bench/run all)
comma := ,
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD_DIR ?= build
else
BUILD_DIR ?= build-$(subst $(comma),-,$(SANITIZE))
endif
JOBS ?= $(shell nproc)

.PHONY: all bootstrap build run test bench clean

all: build

bootstrap:
	scripts/bootstrap

build: bootstrap
	cmake -S . -B $(BUILD_DIR) -DTW_SANITIZE=$(SANITIZE)
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/server/twd serve

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

bench: build
	bench/run all $(BUILD_DIR)

clean:
	rm -rf build build-*/
