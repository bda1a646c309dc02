/*
 * ckpt.h: checkpoints (ARCHITECTURE.md §7).
 *
 * On disk, one directory per step:
 *
 *   <dir>/step-<step, 10 digits>/shard-<rank>.bin   one file per shard
 *   <dir>/step-<step, 10 digits>/MANIFEST           written last
 *
 * A shard file is a header (magic, version, step, rank, the segment table
 * with each segment's name, length and CRC32C) followed by the segments.
 * The MANIFEST lists every shard with its size and CRC32C and checksums
 * itself.  A step is complete iff its MANIFEST exists and verifies; loading
 * takes the newest complete step whose shard verifies, and says which newer
 * step it skipped and why.
 *
 * Each file is written with io_uring (O_DIRECT with aligned, registered
 * buffers where the file system allows it, buffered writes otherwise), to
 * a temporary name, fsynced through the ring, renamed, and the directory
 * fsynced.  The storage backend is an ops table (storage_uring.c,
 * storage_posix.c); fault.h's FAULT_CKPT_* classes break it in tests.
 */
#ifndef ARC_CKPT_H
#define ARC_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_NAME_MAX	32	/* segment name, NUL included */
#define CKPT_MAX_SEGS	64
#define CKPT_MAX_SHARDS	4096	/* entries of one MANIFEST */
#define CKPT_ALIGN	4096	/* segments start on this file offset */

/*
 * Layout of every file a backend writes: hdr at offset 0, then segment i at
 * the first multiple of CKPT_ALIGN at or after the end of the piece before
 * it (zeros in between); the file ends exactly where the last piece ends.
 */
static inline uint64_t
ckpt_align_up(uint64_t x)
{
	return (x + CKPT_ALIGN - 1) & ~(uint64_t)(CKPT_ALIGN - 1);
}

/* One named piece of state (params, adam_m, adam_v, trainer, ...). */
struct ckpt_seg {
	const char	*name;
	void		*data;	/* read from on save, written to on load */
	size_t		 len;	/* bytes; must match exactly on load */
};

/* What the manifest records of one shard. */
struct ckpt_shard_info {
	uint32_t	rank;
	uint64_t	size;	/* file size in bytes */
	uint32_t	crc;	/* CRC32C of the whole file */
};

/* Storage backends (one file each). */
struct storage_ops {
	const char	*name;
	/*
	 * Writes hdr and segs, laid out as above (ckpt_align_up), to a new
	 * file at path (mode 0644, O_EXCL; the caller renames it) and fsyncs
	 * it.  segs may be NULL when nseg is 0.  @return 0 or -errno; on
	 * error path is removed and storage_fail() has said what failed.
	 */
	int	(*write_file)(const char *path, const struct ckpt_seg *segs,
		    int nseg, const void *hdr, size_t hdrlen);
	/*
	 * Reads len bytes at off of fd (opened by ckpt.c, buffered) into buf.
	 * @return 0 or -errno; -EIO if the file ends first.
	 */
	int	(*read_at)(int fd, void *buf, size_t len, uint64_t off);
};
extern const struct storage_ops storage_uring_ops;
extern const struct storage_ops storage_posix_ops;

/*
 * Backends record what failed here ("write <path> at offset N"), with
 * strerror(-rc) appended; ckpt.c copies it into the caller's err.  Per
 * thread.  @return rc.
 */
int	storage_fail(int rc, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
const char	*storage_last_error(void);

/*
 * storage_uring.c knobs, for tests and bench/ckpt (0 / NULL: defaults,
 * QD 16, 1 MiB chunks, O_DIRECT and registered buffers when allowed).
 * Process-wide; set them before saving, not while a save runs.
 */
struct storage_uring_conf {
	int	qd;		/* writes in flight, 1..64 */
	size_t	chunk;		/* bytes per write, multiple of CKPT_ALIGN */
	int	no_direct;	/* 1: buffered writes even where O_DIRECT works */
	int	no_register;	/* 1: never register buffers */
	int	no_fallocate;	/* 1: do not reserve the file's blocks first */
};
void	storage_uring_configure(const struct storage_uring_conf *c);

/* What the last storage_uring_ops.write_file of this process did. */
struct storage_uring_stats {
	int		direct;		/* the file was written with O_DIRECT */
	int		registered;	/* from registered buffers */
	int		fixed_file;	/* through a registered file */
	int		posix_fallback;	/* no io_uring here: posix did it */
	unsigned long	writes;		/* write requests submitted */
	unsigned long	short_writes;	/* of which requeued after a short write */
	unsigned long	direct_refused;	/* EINVAL under O_DIRECT: went buffered */
};
void	storage_uring_last(struct storage_uring_stats *st);

/* "uring" (default) or "posix". @return 0 or -EINVAL. */
int	ckpt_set_backend(const char *name);

/*
 * Writes shard `rank` of `step` under dir (creating dir and the step
 * directory).  Fills *info for the manifest.  @return 0 or -errno; on
 * error err says what failed (file, operation, reason) and nothing
 * half-written is left under its final name.  If step is already complete
 * (saved again), its MANIFEST is removed first: it is incomplete until the
 * next ckpt_commit.
 */
int	ckpt_write_shard(const char *dir, uint64_t step, uint32_t rank,
	    const struct ckpt_seg *segs, int nseg,
	    struct ckpt_shard_info *info, char *err, size_t errlen);

/*
 * Writes the MANIFEST of step (making it complete), then deletes complete
 * steps older than the newest `keep` ones (keep = 0: keep all) and any
 * incomplete step older than this one.  @return 0 or -errno.
 *
 * Every shard listed must already be under its final name with the size
 * given (else -ENOENT / -EINVAL, nothing committed).  A failure of the
 * retention pass is logged, not returned: the step is committed then.
 */
int	ckpt_commit(const char *dir, uint64_t step,
	    const struct ckpt_shard_info *shards, int nshards, int keep,
	    char *err, size_t errlen);

/* Standalone: ckpt_write_shard(rank 0) + ckpt_commit(1 shard). */
int	ckpt_save(const char *dir, uint64_t step, const struct ckpt_seg *segs,
	    int nseg, int keep, char *err, size_t errlen);

/*
 * Loads shard `rank` of the newest complete step that verifies into segs
 * (names and lengths must match the file's, else that step is refused
 * with the reason).  Newer steps that are skipped are logged with why
 * ("torn", "checksum mismatch", ...).  @return 0 with *step set, -ENOENT
 * if there is no usable checkpoint, or another -errno (err says why).
 *
 * Precisely: -ENOENT when no step under dir has a MANIFEST (or dir does
 * not exist): nothing was ever committed, start fresh.  -EINVAL when no
 * step loaded and at least one was refused because its segments differ
 * (a different model or config: do not start fresh over it).  -EIO when
 * complete steps exist but none verifies.  -ENOENT leaves segs' data
 * untouched; after other errors their contents are unspecified (a step
 * may have been read half-way).
 */
int	ckpt_load_latest(const char *dir, uint32_t rank, uint64_t *step,
	    const struct ckpt_seg *segs, int nseg, char *err, size_t errlen);

/*
 * Loads shard `rank` of step `step` (complete, verified) into segs.
 * @return 0, -ENOENT (not complete), -EINVAL (segments differ), -EIO
 * (damaged) or another -errno, err saying why.
 */
int	ckpt_load_at(const char *dir, uint32_t rank, uint64_t step,
	    const struct ckpt_seg *segs, int nseg, char *err, size_t errlen);

/*
 * Lists complete steps under dir, newest first, into steps[max].
 * @return how many, or -errno.
 */
int	ckpt_list(const char *dir, uint64_t *steps, int max);

#endif /* ARC_CKPT_H */
