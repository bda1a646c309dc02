#!/bin/sh
# kern_paths.sh: the weight-gradient products have two paths, our AVX2
# gemm_tn.c (CPUs without AVX-512) and oneDNN's sgemm (with it); a CPU
# runs one of them.  Both are checked here against the scalar reference
# and the model's finite differences, whatever this CPU has.
BUILD=${BUILD:-build}
fail=0
for p in tn dnnl; do
	for t in check_kern check_gpt; do
		if ARCEUS_DW=$p CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120} \
		    "$BUILD/tests/$t" > /tmp/kern_paths.$$ 2>&1; then
			echo "ok $t with ARCEUS_DW=$p: $(tail -n 1 /tmp/kern_paths.$$)"
		else
			echo "FAIL $t with ARCEUS_DW=$p:"; tail -n 20 /tmp/kern_paths.$$
			fail=1
		fi
	done
done
rm -f /tmp/kern_paths.$$
[ $fail = 0 ] && echo "kern_paths: PASS"
exit $fail
