/*
 * mpi_allreduce.c: the anchor of bench/allreduce: MPI_Allreduce (sum,
 * fp32) of each size given in bytes, algorithm bandwidth printed by rank 0
 * in the same format as `arceus-dptool bench`.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
	int rank, n;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	for (int a = 1; a < argc; a++) {
		size_t bytes = (size_t)atoll(argv[a]), count = bytes / 4;
		int it = bytes >= (256u << 20) ? 3 : bytes >= (64u << 20) ? 5 :
		    bytes >= (1u << 20) ? 20 : 200;
		float *b = calloc(count, 4);
		double t0 = 0, t;

		for (int k = -1; k < it; k++) {
			if (k == 0) {
				MPI_Barrier(MPI_COMM_WORLD);
				t0 = MPI_Wtime();
			}
			MPI_Allreduce(MPI_IN_PLACE, b, (int)count, MPI_FLOAT,
			    MPI_SUM, MPI_COMM_WORLD);
		}
		t = MPI_Wtime() - t0;
		if (rank == 0)
			printf("mpi bytes=%zu iters=%d algbw_MBps=%.2f\n", bytes,
			    it, (double)bytes * it / t / 1e6);
		fflush(stdout);
		free(b);
	}
	MPI_Finalize();
	return 0;
}
