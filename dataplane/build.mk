# dataplane/: arceus-dataplane, libarceus-dp (what workers link), the
# dataplane's tests, fuzz harness and benchmark.  Included by the Makefile.

# libarceus-dp: the worker side (client and rings); the header is
# dataplane/arceus_dp.h.  Workers also link $(COMMON_LIB) (msg.c).
DP_LIB		:= $(BUILD)/libarceus-dp.a
DP_LIB_SRC	:= dataplane/client.c dataplane/ring.c
# The engine: everything of the daemon but main.c (tests link it).
DP_ENGINE	:= $(BUILD)/libarc-dp-engine.a
DP_ENGINE_SRC	:= $(filter-out dataplane/main.c dataplane/dptool.c \
		   dataplane/transport_dpdk.c \
		   $(DP_LIB_SRC),$(wildcard dataplane/*.c))
DP_LDLIBS	 = $(call pc,--libs,liburing) -lm -lpthread

# The RDMA verbs backend (transport_rdma.c) only where pkg-config finds
# libibverbs and librdmacm; without them it drops out and the rest builds.
# transport.c registers it under ARC_HAVE_RDMA (+=: other backends add
# their -D too).  Before the tests below: they link with DP_LDLIBS.
RDMA_PKGS	:= libibverbs librdmacm
HAVE_RDMA	:= $(shell pkg-config --exists $(RDMA_PKGS) 2>/dev/null && \
		   echo 1)
ifeq ($(HAVE_RDMA),1)
CFLAGS_dataplane/transport_rdma.c := $(call pc,--cflags,$(RDMA_PKGS))
CFLAGS_dataplane/transport.c += -DARC_HAVE_RDMA
DP_LDLIBS	+= $(call pc,--libs,$(RDMA_PKGS))
else
DP_ENGINE_SRC	:= $(filter-out dataplane/transport_rdma.c,$(DP_ENGINE_SRC))
endif
# The DPDK backend (see the end of this file) when pkg-config finds it;
# here, before the tests below take DP_LDLIBS.
HAVE_DPDK	:= $(shell pkg-config --exists libdpdk 2>/dev/null && echo 1)
ifeq ($(HAVE_DPDK),1)
DP_LDLIBS	+= $(call pc,--libs,libdpdk)
endif

PROGRAMS	+= $(BUILD)/arceus-dataplane $(BUILD)/arceus-dptool $(DP_LIB)

$(DP_LIB): $(DP_LIB_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(DP_ENGINE): $(DP_ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/arceus-dataplane: $(BUILD)/obj/dataplane/main.o $(DP_ENGINE) \
    $(DP_LIB) $(COMMON_LIB)
	$(CC) $(ALDFLAGS) -o $@ $^ $(DP_LDLIBS)

# The operator's and tests' tool: links, probes, status, test worker, bench.
$(BUILD)/arceus-dptool: $(BUILD)/obj/dataplane/dptool.o $(DP_ENGINE) \
    $(DP_LIB) $(COMMON_LIB)
	$(CC) $(ALDFLAGS) -o $@ $^ $(DP_LDLIBS)

DP_TESTS	:= $(patsubst tests/unit/check_%.c,%,$(wildcard $(patsubst \
		   %,tests/unit/check_%.c,ring wire msg compress reduce \
		   collective arena rdp)))
$(foreach t,$(DP_TESTS),$(eval $(call unit_test,$(t),\
    $(DP_ENGINE) $(DP_LIB) $(COMMON_LIB),$(DP_LDLIBS))))

VALGRIND_TESTS	+= $(DP_TESTS:%=check_%)
HDR_CFLAGS	+= -Idataplane
CHECK_SCRIPTS	+= $(wildcard tests/cluster/dp_cluster.sh tests/fuzz/dp_fuzz.sh)
$(foreach t,$(DP_TESTS),$(eval CFLAGS_tests/unit/check_$(t).c := -Idataplane))

# The fuzz harness needs clang and its libFuzzer runtime.
DEBS		+= clang libclang-rt-14-dev

# The fuzz harness of the wire and message decoders (libFuzzer, clang):
# a bounded run in make check (tests/fuzz/dp_fuzz.sh), a long one here.
FUZZ_CC		?= clang
FUZZ_SECONDS	?= 600
DP_FUZZ_SRC	:= tests/fuzz/fuzz_dp.c $(addprefix common/,crc32c.c fault.c \
		   log.c msg.c wire.c) $(DP_ENGINE_SRC) dataplane/ring.c
$(BUILD)/fuzz/fuzz_dp: $(DP_FUZZ_SRC) $(wildcard common/*.h dataplane/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -g -O1 -Icommon -Idataplane \
	    -fsanitize=fuzzer,address,undefined -o $@ $(DP_FUZZ_SRC) \
	    $(DP_LDLIBS)

# `fuzz` only lists prerequisites, so that every area can add its own.
fuzz: fuzz-dp
fuzz-dp:
	FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=$(BUILD) tests/fuzz/dp_fuzz.sh

.PHONY: fuzz-dp

# All-reduce through arceus against OpenMPI and iperf3 (bench/allreduce).
# Needs openmpi-bin, libopenmpi-dev and iperf3; not part of make check.
bench-allreduce: $(BUILD)/arceus-dataplane $(BUILD)/arceus-dptool
	BUILD=$(BUILD) bench/allreduce/run.sh

.PHONY: bench-allreduce

# The codecs are plain loops written to vectorize: let them (no FMA
# contraction: decode-and-add must equal decode then add, bit for bit).
CFLAGS_dataplane/compress.c := -O3 -ffp-contract=off -fno-math-errno

# DPDK backend (transport_dpdk.c; its protocol rdp.c is plain C, always
# built and unit-tested): only where pkg-config finds libdpdk; without it
# the backend drops out and the rest builds.  DPDK's headers want gnu11
# (the Makefile's CSTD).  tests/cluster/dp_dpdk.sh runs it over af_packet.
DEBS		+= libdpdk-dev
ifeq ($(HAVE_DPDK),1)
$(DP_ENGINE): $(BUILD)/obj/dataplane/transport_dpdk.o
CFLAGS_dataplane/transport_dpdk.c := $(call pc,--cflags,libdpdk)
CFLAGS_dataplane/transport.c += -DARC_HAVE_DPDK
CHECK_SCRIPTS	+= $(wildcard tests/cluster/dp_dpdk.sh tests/cluster/dp_mixed.sh)
endif

# The backends side by side on one veth pair: iperf3, tcp, dpdk and the
# device's raw rate (bench/transport; needs root, iperf3); not in check.
bench-transport: $(BUILD)/arceus-dataplane $(BUILD)/arceus-dptool \
    $(if $(HAVE_DPDK),$(BUILD)/bench/dpdk-rawrate)
	BUILD=$(BUILD) bench/transport/run.sh

# The port's raw frame rate (Debian 12 ships no dpdk-testpmd).
$(BUILD)/bench/dpdk-rawrate: bench/transport/rawrate.c
	@mkdir -p $(@D)
	$(CC) $(ACFLAGS) $(call pc,--cflags,libdpdk) -o $@ $< \
	    $(call pc,--libs,libdpdk)

.PHONY: bench-transport

# RDMA with real verbs: tests/rdma/run.sh boots QEMU guests with Soft-RoCE
# and runs tests/rdma/rdma_test.c there (exit 77 without QEMU).
DEBS		+= libibverbs-dev librdmacm-dev rdma-core ibverbs-providers \
		   iproute2 qemu-system-x86 busybox-static
ifeq ($(HAVE_RDMA),1)
$(BUILD)/tests/rdma_test: $(BUILD)/obj/tests/rdma/rdma_test.o $(DP_ENGINE) \
    $(DP_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALDFLAGS) -o $@ $^ $(DP_LDLIBS)
CFLAGS_tests/rdma/ := -Idataplane

check-rdma: $(BUILD)/tests/rdma_test
	BUILD=$(BUILD) tests/rdma/run.sh

# make check runs it too (about 2 minutes of QEMU TCG here).
PROGRAMS	+= $(BUILD)/tests/rdma_test
CHECK_SCRIPTS	+= tests/rdma/run.sh
else
check-rdma:
	@echo "SKIP: check-rdma: no libibverbs/librdmacm (pkg-config)"
endif

.PHONY: check-rdma
