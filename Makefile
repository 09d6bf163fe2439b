# rolloutd: this Makefile only drives scripts/ and CMake; CMake is the build.
#   make test    install what is missing, configure into build/, build, run ctest
#   make demo    the same, then run both daemons and a rollout workload (scripts/demo)
#   make demo-env  the same with configs/image.yaml: episodes in a container image, a snapshot,
#                a forked group and a resume (scripts/demo-env, docs/environments.md)
#   make bench   run every rollout-bench suite that is built (scripts/bench)
#   make asan    unit tests, and integration tests labelled asan, under ASan+UBSan (build-asan/)
#   make tsan    the tests labelled tsan under TSan (build-tsan/)
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_ARGS ?=
JOBS ?= $(shell nproc)

.PHONY: all bootstrap configure build test demo demo-env bench asan tsan format format-check install clean

all: build

bootstrap:
	@scripts/bootstrap

configure: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS) > $(BUILD).configure.log 2>&1 || { cat $(BUILD).configure.log; exit 1; }

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# ctest's exit status is kept; the report lists skipped tests and why either way.
test: build
	@cd $(BUILD) && { ctest --output-on-failure -j $(JOBS) --output-junit junit.xml; rc=$$?; \
		$(CURDIR)/scripts/test-report . || true; exit $$rc; }

demo: build
	@scripts/demo $(BUILD)

demo-env: build
	@scripts/demo-env $(BUILD)

bench: build
	@scripts/bench $(BUILD)

asan:
	@$(MAKE) --no-print-directory build BUILD=build-asan BUILD_TYPE=Debug CMAKE_ARGS="$(CMAKE_ARGS) -DROLLOUT_SANITIZE=address,undefined"
	@cd build-asan && ctest --output-on-failure -j $(JOBS) -L 'unit|asan' --output-junit junit.xml

tsan:
	@$(MAKE) --no-print-directory build BUILD=build-tsan BUILD_TYPE=Debug CMAKE_ARGS="$(CMAKE_ARGS) -DROLLOUT_SANITIZE=thread"
	@cd build-tsan && ctest --output-on-failure -j $(JOBS) -L tsan

format-check: configure
	@cmake --build $(BUILD) --target format-check

format: configure
	@cmake --build $(BUILD) --target format

install: build
	@cmake --install $(BUILD)

clean:
	rm -rf build build-asan build-tsan build*.configure.log
