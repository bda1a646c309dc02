# bench/kern: each kern_dnnl kernel against its scalar reference, flash
# against naive attention, matmul GFLOP/s against raw dnnl_sgemm, at the
# two benchmark shapes of issue 2.  Included by the top-level Makefile.
#
#   make bench-kern                          1 thread, then 2
#   make bench-kern BENCH_KERN_ARGS='-t 2 -s large -q'

BENCH_KERN	:= $(BUILD)/bench/bench_kern
BENCH_KERN_ARGS	?=

$(BENCH_KERN): $(BUILD)/obj/bench/kern/bench_kern.o $(COMPUTE_LIB) \
    $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALDFLAGS) -o $@ $^ $(COMPUTE_LDLIBS)

bench-kern: $(BENCH_KERN)
	@if [ -n "$(BENCH_KERN_ARGS)" ]; then \
	    $(BENCH_KERN) $(BENCH_KERN_ARGS); \
	else $(BENCH_KERN) -t 1 && $(BENCH_KERN) -t 2; fi

.PHONY: bench-kern
