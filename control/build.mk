# control/: arceus-control (the node's authority) and arceusctl (the
# operator's CLI).  Included by the top-level Makefile.

CTL_PLAN_OBJ	:= $(BUILD)/obj/control/planner.o $(BUILD)/obj/control/cluster.o
CTL_CLI_OBJ	:= $(BUILD)/obj/control/arceusctl.o \
		   $(BUILD)/obj/control/ctlclient.o

# arceusctl dispatches `dataset build` and `sample` to compute/tool.c when
# the compute library has it (CTL_NO_COMPUTE=1 leaves them out).
ifneq ($(wildcard compute/tool.c)$(CTL_NO_COMPUTE),compute/tool.c)
else
CFLAGS_control/arceusctl.c += -DARC_HAVE_COMPUTE_TOOLS -Icompute
CTL_CLI_LIBS	:= $(COMPUTE_LIB)
CTL_CLI_LDLIBS	 = $(COMPUTE_LDLIBS)
endif

PROGRAMS	+= $(BUILD)/arceusctl

$(BUILD)/arceusctl: $(CTL_CLI_OBJ) $(CTL_PLAN_OBJ) $(CTL_CLI_LIBS) \
    $(COMMON_LIB)
	$(CC) $(ALDFLAGS) -o $@ $^ $(CTL_CLI_LDLIBS) -lm

$(eval $(call unit_test,planner,$(CTL_PLAN_OBJ) $(COMMON_LIB),-lm))

VALGRIND_TESTS	+= check_planner
HDR_CFLAGS	+= -Icontrol
CFLAGS_tests/unit/ += -Icontrol

CTL_SODIUM	 = $(call pc,--libs,libsodium)
$(eval $(call unit_test,swim,$(BUILD)/obj/control/swim.o $(COMMON_LIB),$$(CTL_SODIUM)))
VALGRIND_TESTS	+= check_swim
