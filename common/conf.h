/*
 * conf.h: the INI reader shared by every Arceus process and tool.
 *
 * Two layers.  conf_parse_cb() tokenizes a file ("[section]", "key = value",
 * '#' or ';' comments) and calls back per assignment; conf_load() drives it
 * from a table of keys (type, bounds, default, offsetof target), in the way
 * of nginx's ngx_command_t and Redis' static_configs[].  Every error is
 * reported as "file:line: reason"; a file is read to its end so that all of
 * its errors are reported at once, and the caller refuses to start if there
 * was any.
 */
#ifndef ARC_CONF_H
#define ARC_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONF_MAX_ERRS	64	/* errors kept per load; the count goes on */
#define CONF_ERR_LEN	256	/* one "file:line: reason" message */
#define CONF_LINE_MAX	4096	/* longest accepted line */

enum conf_type {
	CONF_INT,	/* int64_t, decimal, bounds min..max */
	CONF_SIZE,	/* uint64_t, with optional K/M/G/T suffix (powers of 2) */
	CONF_DOUBLE,	/* double, finite, bounds min..max */
	CONF_BOOL,	/* int: yes/no, true/false, on/off, 1/0 */
	CONF_STR,	/* char[size], NUL terminated */
	CONF_CUSTOM,	/* parsed by the key's apply hook */
};

struct conf_errs;
struct conf_key;
/* Parses value into dst for a CONF_CUSTOM key. @return 0, or -1 with *why */
typedef int conf_apply_fn(const struct conf_key *k, void *dst,
    const char *value, const char **why);

struct conf_key {
	const char	*section;
	const char	*name;
	enum conf_type	 type;
	size_t		 off;	/* offsetof() of the field in the target */
	size_t		 size;	/* CONF_STR: size of the char array */
	double		 min;	/* numbers: inclusive bounds */
	double		 max;
	const char	*def;	/* default, parsed like a value; NULL: none */
	const char	*help;	/* one line, for --help and docs */
	conf_apply_fn	*apply;	/* CONF_CUSTOM only */
	int		 repeat;	/* may appear more than once */
};

struct conf_errs {
	int	n;				/* errors seen (may exceed kept) */
	char	msg[CONF_MAX_ERRS][CONF_ERR_LEN];
};

/*
 * Called for every "key = value" of a file.  Return 0, or -1 after adding an
 * error with conf_err().
 */
typedef int conf_cb(void *ctx, const char *section, const char *key,
    const char *value, const char *file, int line, struct conf_errs *errs);

void	conf_err(struct conf_errs *errs, const char *file, int line,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	conf_errs_print(const struct conf_errs *errs, FILE *fp);

/*
 * Tokenizes path and calls cb per assignment.  Syntax errors are added to
 * errs and parsing goes on.  @return 0 if no error was added, else -1.
 */
int	conf_parse_cb(const char *path, conf_cb *cb, void *ctx,
	    struct conf_errs *errs);

/* Fills dst with every default of tab. @return 0 or -1 (errs says why). */
int	conf_defaults(const struct conf_key *tab, void *dst,
	    struct conf_errs *errs);

/*
 * Reads path into dst through tab.  Unknown sections and keys, duplicate
 * keys, malformed and out-of-bounds values are errors.  Call
 * conf_defaults() first.  @return 0 or -1 (errs holds every error).
 */
int	conf_load(const struct conf_key *tab, void *dst, const char *path,
	    struct conf_errs *errs);

/*
 * Applies one "section.key=value" override (a --set argument); origin names
 * it in errors.  @return 0 or -1.
 */
int	conf_set(const struct conf_key *tab, void *dst, const char *assignment,
	    const char *origin, struct conf_errs *errs);

/* Applies one value to one key; used by conf_load() and conf_set(). */
int	conf_apply(const struct conf_key *k, void *dst, const char *value,
	    const char *file, int line, struct conf_errs *errs);

const struct conf_key *conf_find(const struct conf_key *tab,
	    const char *section, const char *name);

/* Writes every key of tab with its current value as an INI file. */
void	conf_dump(const struct conf_key *tab, const void *src, FILE *fp);

/* Value parsers, usable on their own. @return 0 or -1 with *why set. */
int	conf_parse_int(const char *s, int64_t *out, const char **why);
int	conf_parse_size(const char *s, uint64_t *out, const char **why);
int	conf_parse_double(const char *s, double *out, const char **why);
int	conf_parse_bool(const char *s, int *out, const char **why);

#endif /* ARC_CONF_H */
