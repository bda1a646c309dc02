# control/: arceus-control (the node's authority) and arceusctl (the
# operator's CLI).  Included by the top-level Makefile.

CTL_PLAN_OBJ	:= $(BUILD)/obj/control/planner.o $(BUILD)/obj/control/cluster.o \
		   $(BUILD)/obj/control/replan.o
CTL_CLI_OBJ	:= $(BUILD)/obj/control/arceusctl.o \
		   $(BUILD)/obj/control/ctlclient.o

DEBS		+= libuv1-dev libsodium-dev libmicrohttpd-dev libsystemd-dev \
		   libraft-dev libavahi-client-dev avahi-daemon dbus \
		   chromium systemd clang

# arceusctl dispatches `dataset build` and `sample` to compute/tool.c when
# the compute library has it (CTL_NO_COMPUTE=1 leaves them out).
ifneq ($(wildcard compute/tool.c)$(CTL_NO_COMPUTE),compute/tool.c)
else
CTL_CLI_LIBS	:= $(COMPUTE_LIB) $(COMPUTE_DPLIB)
CTL_CLI_UNDEF	:= -Wl,-u,tool_dataset_build -Wl,-u,tool_sample \
		   -Wl,-u,tool_share
CTL_CLI_LDLIBS	 = $(COMPUTE_LDLIBS)
endif

PROGRAMS	+= $(BUILD)/arceusctl $(BUILD)/arceus-control

CTL_DAEMON_OBJ	:= $(patsubst %.c,$(BUILD)/obj/%.o,control/main.c \
		   control/swim.c control/report.c control/ctlsock.c \
		   control/http.c control/profile.c control/raftfsm.c \
		   control/raftauth.c control/raftglue.c control/discovery.c \
		   control/dpseam.c control/links.c)
CFLAGS_control/dpseam.c += -Idataplane
CTL_DAEMON_LDLIBS = $(call pc,--libs,raft libuv libsodium libmicrohttpd \
		   libsystemd avahi-client) -ldnnl -lm -lpthread

# dpseam.c talks to the dataplane through its client helpers (DP_LIB).
$(BUILD)/arceus-control: $(CTL_DAEMON_OBJ) $(CTL_PLAN_OBJ) $(DP_LIB) \
    $(COMMON_LIB)
	$(CC) $(ALDFLAGS) -o $@ $^ $(CTL_DAEMON_LDLIBS)

$(BUILD)/arceusctl: $(CTL_CLI_OBJ) $(CTL_PLAN_OBJ) $(CTL_CLI_LIBS) \
    $(COMMON_LIB)
	$(CC) $(ALDFLAGS) $(CTL_CLI_UNDEF) -o $@ $^ $(CTL_CLI_LDLIBS) -lm

$(eval $(call unit_test,planner,$(CTL_PLAN_OBJ) $(COMMON_LIB),-lm))

VALGRIND_TESTS	+= check_planner
HDR_CFLAGS	+= -Icontrol
CFLAGS_tests/unit/ += -Icontrol

CTL_SODIUM	 = $(call pc,--libs,libsodium)
$(eval $(call unit_test,swim,$(BUILD)/obj/control/swim.o $(COMMON_LIB),$$(CTL_SODIUM)))
VALGRIND_TESTS	+= check_swim check_raftfsm check_raftauth
$(eval $(call unit_test,links,$(BUILD)/obj/control/links.o $(BUILD)/obj/control/swim.o $(CTL_PLAN_OBJ) $(COMMON_LIB),$$(CTL_SODIUM) -lm))
VALGRIND_TESTS	+= check_links
$(eval $(call unit_test,ctlconf,$(COMMON_LIB),))
VALGRIND_TESTS	+= check_ctlconf
CHECK_SCRIPTS	+= tests/cluster/ctl_units.sh tests/cluster/ctl_confcheck.sh \
		   tests/cluster/ctl_hosts.sh tests/cluster/ctl_links.sh \
		   tests/cluster/ctl_recover.sh tests/cluster/straggler.sh \
		   tests/browser/ctl_dashboard.sh tests/cluster/local_run.sh
# the whole cluster in training under faults (tests/faults/): data
# parallel replicas and pipeline stages; in make check, and alone by make
# check-faults
FAULT_SCRIPTS	:= tests/faults/train_faults.sh tests/faults/pipe_faults.sh
CHECK_SCRIPTS	+= $(FAULT_SCRIPTS)
check-faults: all corpus
	@fail=0; for s in $(FAULT_SCRIPTS); do echo "== $$s"; \
	    BUILD=$(BUILD) timeout 900 $$s || fail=1; done; exit $$fail
.PHONY: check-faults
CTL_RAFT_LIBS	 = $(call pc,--libs,raft libuv)
$(eval $(call unit_test,raftfsm,$(BUILD)/obj/control/raftfsm.o $(COMMON_LIB),$$(CTL_RAFT_LIBS)))
$(eval $(call unit_test,raftauth,$(BUILD)/obj/control/raftauth.o $(COMMON_LIB),$$(CTL_RAFT_LIBS) $$(CTL_SODIUM)))

# control's libFuzzer harness (clang): SWIM, raft entries and snapshots,
# cluster files; a bounded run in make check (tests/fuzz/ctl_fuzz.sh).
FUZZ_CC		?= clang
CTL_FUZZ_SRC	:= tests/fuzz/fuzz_ctl.c control/swim.c control/raftfsm.c \
		   control/cluster.c control/planner.c control/replan.c \
		   common/conf.c \
		   common/log.c
$(BUILD)/fuzz/fuzz_ctl: $(CTL_FUZZ_SRC) $(wildcard common/*.h control/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -g -O1 -Icommon -Icontrol \
	    -fsanitize=fuzzer,address,undefined -o $@ $(CTL_FUZZ_SRC) \
	    $(call pc,--libs,libsodium raft) -lm
CHECK_SCRIPTS	+= tests/fuzz/ctl_fuzz.sh
