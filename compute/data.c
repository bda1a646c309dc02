/*
 * data.c: the byte-level tokenizer and datasets.
 *
 * Tokens are bytes (vocabulary 256), so any UTF-8 text trains as it is.  A
 * dataset file is either plain text or a token file made by
 * `arceusctl dataset build`:
 *
 *   offset 0   "ARCTOK01"          magic and version
 *          8   u64 little endian   token count
 *         16   u32                 CRC32C of the tokens
 *         20   44 bytes zero       reserved
 *         64   tokens, one byte each
 *
 * The first (1 - val_fraction) of the tokens train, the rest validate.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute.h"
#include "crc32c.h"

#define TOK_MAGIC	"ARCTOK01"
#define TOK_HDR		64

static int
read_all(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;	/* shrank under us */
		done += (size_t)n;
	}
	return 0;
}

/* Reads a text or token file into *out (caller frees). */
static int
load_tokens(const char *path, uint8_t **out, size_t *outlen, char *err,
    size_t errlen)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s%s", path,
		    strerror(errno), errno == ENOENT ? " (hint: `make corpus` "
		    "fetches the default corpus)" : "");
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	len = (size_t)st.st_size;
	if ((buf = malloc(len ? len : 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory for %zu bytes", path,
		    len);
		close(fd);
		return -ENOMEM;
	}
	if ((rc = read_all(fd, buf, len)) < 0) {
		snprintf(err, errlen, "%s: read: %s", path, strerror(-rc));
		goto fail;
	}
	close(fd);
	fd = -1;
	if (len >= TOK_HDR && memcmp(buf, TOK_MAGIC, 8) == 0) {
		uint64_t n;
		uint32_t crc;

		memcpy(&n, buf + 8, 8);
		memcpy(&crc, buf + 16, 4);
		if (n != len - TOK_HDR) {
			snprintf(err, errlen, "%s: token file says %llu tokens "
			    "but holds %zu: truncated or corrupt; rebuild it "
			    "with `arceusctl dataset build`", path,
			    (unsigned long long)n, len - TOK_HDR);
			rc = -EINVAL;
			goto fail;
		}
		if (crc32c(0, buf + TOK_HDR, n) != crc) {
			snprintf(err, errlen, "%s: token checksum mismatch: "
			    "corrupt; rebuild it", path);
			rc = -EINVAL;
			goto fail;
		}
		memmove(buf, buf + TOK_HDR, n);
		len = n;
	} else if (len >= 4 && memcmp(buf, "ARCT", 4) == 0) {
		snprintf(err, errlen, "%s: token file of an unknown version "
		    "(expected %s): rebuild it with this arceusctl", path,
		    TOK_MAGIC);
		rc = -EINVAL;
		goto fail;
	}
	*out = buf;
	*outlen = len;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int
data_load(struct dataset *d, const char *path, double val_fraction,
    int block_size, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len, need;
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = load_tokens(path, &buf, &len, err, errlen)) < 0)
		return rc;
	d->tokens = buf;
	d->ntokens = len;
	d->ntrain = (size_t)((double)len * (1.0 - val_fraction));
	need = (size_t)block_size + 1;
	if (d->ntrain < need || d->ntokens - d->ntrain < need) {
		snprintf(err, errlen, "%s: %zu tokens are too few for "
		    "block_size %d with val_fraction %g: each split needs at "
		    "least %zu", path, len, block_size, val_fraction, need);
		data_free(d);
		return -EINVAL;
	}
	return 0;
}

void
data_free(struct dataset *d)
{
	if (d == NULL)
		return;
	free(d->tokens);
	memset(d, 0, sizeof(*d));
}

void
data_train_batch(const struct dataset *d, struct rng *r, int B, int T,
    int *inputs, int *targets)
{
	data_train_batch_part(d, r, B, 0, B, T, inputs, targets);
}

void
data_train_batch_part(const struct dataset *d, struct rng *r, int Ball,
    int first, int B, int T, int *inputs, int *targets)
{
	for (int b = 0; b < Ball; b++) {
		size_t off = rng_below(r, d->ntrain - (size_t)T);
		const uint8_t *s = d->tokens + off;

		if (b < first || b >= first + B)
			continue;
		for (int t = 0; t < T; t++) {
			inputs[(b - first) * T + t] = s[t];
			targets[(b - first) * T + t] = s[t + 1];
		}
	}
}

void
data_val_batch(const struct dataset *d, int i, int B, int T, int *inputs,
    int *targets)
{
	size_t nval = d->ntokens - d->ntrain;
	size_t windows = (nval - 1) / (size_t)T;	/* >= 1 by data_load */

	for (int b = 0; b < B; b++) {
		size_t w = ((size_t)i * B + b) % windows;
		const uint8_t *s = d->tokens + d->ntrain + w * T;

		for (int t = 0; t < T; t++) {
			inputs[b * T + t] = s[t];
			targets[b * T + t] = s[t + 1];
		}
	}
}

int
data_build(const char *text_path, const char *out_path, char *err,
    size_t errlen)
{
	struct dataset d;
	uint8_t hdr[TOK_HDR] = { 0 };
	uint64_t n;
	uint32_t crc;
	char tmp[4096];
	FILE *fp;
	int rc;

	memset(&d, 0, sizeof(d));
	if ((rc = load_tokens(text_path, &d.tokens, &d.ntokens, err,
	    errlen)) < 0)
		return rc;
	n = d.ntokens;
	crc = crc32c(0, d.tokens, d.ntokens);
	memcpy(hdr, TOK_MAGIC, 8);
	memcpy(hdr + 8, &n, 8);
	memcpy(hdr + 16, &crc, 4);
	snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
	if ((fp = fopen(tmp, "wx")) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot create: %s", tmp,
		    strerror(errno));
		data_free(&d);
		return rc;
	}
	if (fwrite(hdr, 1, TOK_HDR, fp) != TOK_HDR ||
	    fwrite(d.tokens, 1, d.ntokens, fp) != d.ntokens ||
	    fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
		fclose(fp);
		unlink(tmp);
		data_free(&d);
		return rc ? rc : -EIO;
	}
	fclose(fp);
	data_free(&d);
	if (rename(tmp, out_path) < 0) {
		rc = -errno;
		snprintf(err, errlen, "rename %s -> %s: %s", tmp, out_path,
		    strerror(errno));
		unlink(tmp);
		return rc;
	}
	return 0;
}
