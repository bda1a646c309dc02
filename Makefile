# Arceus: one Makefile for the three daemons, the CLI, tests and benchmarks.
#
#   make                build every program into build/
#   make deps           install the Debian packages that are missing (root)
#   make run            deps + corpus + build + a local cluster (2 nodes on
#                       loopback) training tiny.conf data parallel
#   make run-standalone the same job on this node alone
#   make check          deps + build + every test (unit, cluster, fuzz)
#   make SANITIZER=address,undefined check-unit
#   make valgrind       unit tests under valgrind (-O0, CK_FORK=no)
#   make bench-compute  arceus-worker against PyTorch, same run, ratios
#   make bench-peak     this core's FMA peak against dnnl_sgemm on a step's shapes
#
# Each area adds its programs, tests and packages in its own build.mk.

BUILD		?= build
CC		?= gcc
OPT		?= -O2
ARCH		?= -march=native
SANITIZER	?=

CSTD		:= -std=gnu11 -D_GNU_SOURCE
WARN		:= -Wall -Wextra -Werror -Wno-format-truncation
ACFLAGS		 = $(CSTD) $(OPT) $(ARCH) -g $(WARN) -MMD -MP -fopenmp \
		   -Icommon -I$(BUILD)/gen $(EXTRA_CFLAGS) $(CFLAGS)
ALDFLAGS	 = -fopenmp $(LDFLAGS)
ifneq ($(SANITIZER),)
ACFLAGS		+= -fsanitize=$(SANITIZER) -fno-sanitize-recover=all \
		   -fno-omit-frame-pointer
ALDFLAGS	+= -fsanitize=$(SANITIZER)
endif

# Debian packages the build and the tests need; build.mk files add theirs.
DEBS		:= build-essential pkg-config check libsubunit-dev \
		   liburing-dev libdnnl-dev curl ca-certificates iproute2 \
		   valgrind procps util-linux

# pkg-config, quiet when a package is missing (make deps installs it).
pc = $(shell pkg-config $(1) $(2) 2>/dev/null)

CHECK_LIBS	 = $(call pc,--libs,check) -lm -lpthread
PROGRAMS	:=
UNIT_TESTS	:=
CHECK_SCRIPTS	:=
CHECK_QUICK	:=

# Rebuild everything when the flags change (Redis' .make-settings).
SETTINGS	:= $(BUILD)/.make-settings
$(shell mkdir -p $(BUILD) && \
    echo '$(CC) $(ACFLAGS) $(ALDFLAGS)' | cmp -s - $(SETTINGS) || \
    echo '$(CC) $(ACFLAGS) $(ALDFLAGS)' > $(SETTINGS))

.DEFAULT_GOAL := all

$(BUILD)/obj/%.o: %.c $(SETTINGS)
	@mkdir -p $(@D)
	$(CC) $(ACFLAGS) $(CFLAGS_$(dir $<)) $(CFLAGS_$<) -c -o $@ $<

COMMON_SRC	:= $(wildcard common/*.c)
COMMON_LIB	:= $(BUILD)/libarc-common.a
$(COMMON_LIB): $(COMMON_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

# $(call unit_test,name,libs,ldlibs): tests/unit/check_<name>.c
define unit_test
UNIT_TESTS += $(BUILD)/tests/check_$(1)
$(BUILD)/tests/check_$(1): $(BUILD)/obj/tests/unit/check_$(1).o $(2)
	@mkdir -p $$(@D)
	$$(CC) $$(ALDFLAGS) -o $$@ $$^ $(3) $$(CHECK_LIBS)
endef

# Unit tests see every area's private header.
CFLAGS_tests/unit/ := -Icompute -Idataplane -Icontrol

$(eval $(call unit_test,common,$(COMMON_LIB),-lm))

include compute/build.mk
-include bench/kern/build.mk
-include dataplane/build.mk
-include control/build.mk

.PHONY: all deps run run-standalone check check-all check-unit check-scripts check-headers \
	valgrind clean fuzz

all: $(PROGRAMS) $(UNIT_TESTS)

deps:
	@missing=""; for p in $(DEBS); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "missing Debian packages:$$missing"; \
	    echo "hint: run 'sudo make deps'"; exit 1; fi; \
	echo "installing:$$missing"; \
	prc=0; if [ ! -e /usr/sbin/policy-rc.d ]; then prc=1; \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod +x /usr/sbin/policy-rc.d; fi; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends $$missing; }; \
	rc=$$?; [ $$prc = 1 ] && rm -f /usr/sbin/policy-rc.d; exit $$rc

# The main job: a local cluster of RUN_NODES simulated nodes (control,
# dataplane, worker each, on loopback) training tiny.conf data parallel.
RUN_NODES	?= 2
run:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory corpus all
	BUILD=$(BUILD) control/local-cluster.sh -n $(RUN_NODES) \
	    -j configs/jobs/tiny.conf -- $(RUN_ARGS)

# The same job on this node alone.
run-standalone:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory corpus all
	$(BUILD)/arceus-worker --standalone --job configs/jobs/tiny.conf \
	    --metrics-out $(BUILD)/run-metrics.jsonl $(RUN_ARGS)

check:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory check-all

check-all: all corpus
	@$(MAKE) --no-print-directory check-unit check-scripts check-headers

check-unit: $(UNIT_TESTS)
	@fail=0; for t in $(UNIT_TESTS); do \
	    echo "== $$t"; \
	    if ! CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-120} $$t; then \
	        echo "FAIL: $$t"; fail=1; fi; done; exit $$fail

check-scripts: all
	@fail=0; for s in $(CHECK_SCRIPTS); do \
	    echo "== $$s"; \
	    BUILD=$(BUILD) timeout 900 $$s; rc=$$?; \
	    if [ $$rc = 77 ]; then echo "SKIP: $$s"; \
	    elif [ $$rc != 0 ]; then echo "FAIL: $$s (exit $$rc)"; fail=1; fi; \
	done; exit $$fail

# Every header compiles on its own (DPDK chkincs).
check-headers:
	@fail=0; for h in $(wildcard common/*.h compute/*.h dataplane/*.h \
	    control/*.h); do \
	    echo "#include \"$$h\"" | $(CC) $(CSTD) $(WARN) -I. -Icommon \
	        $(HDR_CFLAGS) -fsyntax-only -x c - || { echo "FAIL: $$h"; \
	        fail=1; }; done; exit $$fail

# Unit tests under valgrind: -O0, no AVX-512 (valgrind lacks it), no fork.
valgrind:
	@$(MAKE) --no-print-directory BUILD=build-valgrind OPT=-O0 \
	    ARCH=-march=x86-64-v2 $(VALGRIND_TESTS:%=build-valgrind/tests/%)
	@fail=0; for t in $(VALGRIND_TESTS); do echo "== valgrind $$t"; \
	    CK_FORK=no ARCEUS_SMALL=1 OMP_NUM_THREADS=1 valgrind -q \
	    --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    --suppressions=tests/valgrind.supp \
	    build-valgrind/tests/$$t || { echo "FAIL: valgrind $$t"; fail=1; }; \
	    done; exit $$fail

clean:
	rm -rf $(BUILD) build-valgrind build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
