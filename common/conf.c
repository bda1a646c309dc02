/*
 * conf.c: table-driven INI reader; see conf.h.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

void
conf_err(struct conf_errs *errs, const char *file, int line, const char *fmt,
    ...)
{
	char reason[CONF_ERR_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (errs->n < CONF_MAX_ERRS) {
		if (line > 0)
			snprintf(errs->msg[errs->n], CONF_ERR_LEN, "%s:%d: %s",
			    file, line, reason);
		else
			snprintf(errs->msg[errs->n], CONF_ERR_LEN, "%s: %s",
			    file, reason);
	}
	errs->n++;
}

void
conf_errs_print(const struct conf_errs *errs, FILE *fp)
{
	int i, kept = errs->n < CONF_MAX_ERRS ? errs->n : CONF_MAX_ERRS;

	for (i = 0; i < kept; i++)
		fprintf(fp, "%s\n", errs->msg[i]);
	if (errs->n > kept)
		fprintf(fp, "(%d more errors)\n", errs->n - kept);
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' &&
		    *s != '.' && *s != ':')
			return 0;
	return 1;
}

int
conf_parse_cb(const char *path, conf_cb *cb, void *ctx, struct conf_errs *errs)
{
	char buf[CONF_LINE_MAX + 2], section[128] = "";
	int line = 0, before = errs->n, toolong = 0;
	FILE *fp;

	if ((fp = fopen(path, "r")) == NULL) {
		conf_err(errs, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	while (fgets(buf, sizeof(buf), fp) != NULL) {
		char *s, *eq, *key, *val;
		size_t len = strlen(buf);

		if (toolong) {		/* rest of an over-long line */
			toolong = len > 0 && buf[len - 1] != '\n';
			continue;
		}
		line++;
		if (len > 0 && buf[len - 1] != '\n' && !feof(fp)) {
			conf_err(errs, path, line, "line longer than %d bytes",
			    CONF_LINE_MAX);
			toolong = 1;
			continue;
		}
		if (memchr(buf, '\0', len) != NULL || strlen(buf) != len) {
			conf_err(errs, path, line, "NUL byte in line");
			continue;
		}
		s = trim(buf);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');

			if (end == NULL) {
				conf_err(errs, path, line,
				    "section header without ']'");
				continue;
			}
			*end = '\0';
			if (*trim(end + 1) != '\0' && *trim(end + 1) != '#' &&
			    *trim(end + 1) != ';') {
				conf_err(errs, path, line,
				    "text after section header");
				continue;
			}
			s = trim(s + 1);
			if (!valid_name(s) || strlen(s) >= sizeof(section)) {
				conf_err(errs, path, line,
				    "invalid section name '%s'", s);
				continue;
			}
			snprintf(section, sizeof(section), "%s", s);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			conf_err(errs, path, line,
			    "expected 'key = value' or '[section]', got '%.64s'",
			    s);
			continue;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		/* An inline comment starts with whitespace then '#' or ';'. */
		for (char *c = val; *c; c++) {
			if ((*c == '#' || *c == ';') && c > val &&
			    isspace((unsigned char)c[-1])) {
				*c = '\0';
				val = trim(val);
				break;
			}
		}
		len = strlen(val);
		if (len >= 2 && val[0] == '"' && val[len - 1] == '"') {
			val[len - 1] = '\0';
			val++;
		}
		if (!valid_name(key)) {
			conf_err(errs, path, line, "invalid key name '%.64s'",
			    key);
			continue;
		}
		if (section[0] == '\0') {
			conf_err(errs, path, line,
			    "key '%s' outside of any [section]", key);
			continue;
		}
		cb(ctx, section, key, val, path, line, errs);
	}
	if (ferror(fp))
		conf_err(errs, path, line, "read error: %s", strerror(errno));
	fclose(fp);
	return errs->n > before ? -1 : 0;
}

int
conf_parse_int(const char *s, int64_t *out, const char **why)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 0);
	if (*s == '\0' || end == s || *end != '\0') {
		*why = "not an integer";
		return -1;
	}
	if (errno == ERANGE) {
		*why = "integer out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *out, const char **why)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (*s == '-' || *s == '\0') {
		*why = "not a size (digits, then K, M, G or T)";
		return -1;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno == ERANGE) {
		*why = "not a size (digits, then K, M, G or T)";
		return -1;
	}
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default:
		*why = "unknown size suffix (use K, M, G or T)";
		return -1;
	}
	if (*end == 'B' || *end == 'b' || (*end == 'i' && end[1] == 'B' &&
	    end++))
		end++;
	if (*end != '\0') {
		*why = "trailing characters after size";
		return -1;
	}
	if (v > UINT64_MAX / mul) {
		*why = "size out of range";
		return -1;
	}
	*out = v * mul;
	return 0;
}

int
conf_parse_double(const char *s, double *out, const char **why)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || end == s || *end != '\0') {
		*why = "not a number";
		return -1;
	}
	if (errno == ERANGE || !isfinite(v)) {
		*why = "number out of range";
		return -1;
	}
	*out = v;
	return 0;
}

int
conf_parse_bool(const char *s, int *out, const char **why)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	*why = "not a boolean (yes/no, true/false, on/off, 1/0)";
	return -1;
}

static void
fmt_bound(char *buf, size_t len, double v)
{
	if (v == (double)(long long)v && fabs(v) < 1e15)
		snprintf(buf, len, "%lld", (long long)v);
	else
		snprintf(buf, len, "%g", v);
}

int
conf_apply(const struct conf_key *k, void *dst, const char *value,
    const char *file, int line, struct conf_errs *errs)
{
	char *p = (char *)dst + k->off, lo[32], hi[32];
	const char *why = NULL;
	int64_t i;
	uint64_t u;
	double d;
	int b;

	fmt_bound(lo, sizeof(lo), k->min);
	fmt_bound(hi, sizeof(hi), k->max);
	switch (k->type) {
	case CONF_INT:
		if (conf_parse_int(value, &i, &why) < 0)
			break;
		if ((double)i < k->min || (double)i > k->max) {
			conf_err(errs, file, line,
			    "%s.%s = %s is out of bounds [%s, %s]", k->section,
			    k->name, value, lo, hi);
			return -1;
		}
		memcpy(p, &i, sizeof(i));
		return 0;
	case CONF_SIZE:
		if (conf_parse_size(value, &u, &why) < 0)
			break;
		if ((double)u < k->min || (double)u > k->max) {
			conf_err(errs, file, line,
			    "%s.%s = %s is out of bounds [%s, %s]", k->section,
			    k->name, value, lo, hi);
			return -1;
		}
		memcpy(p, &u, sizeof(u));
		return 0;
	case CONF_DOUBLE:
		if (conf_parse_double(value, &d, &why) < 0)
			break;
		if (d < k->min || d > k->max) {
			conf_err(errs, file, line,
			    "%s.%s = %s is out of bounds [%s, %s]", k->section,
			    k->name, value, lo, hi);
			return -1;
		}
		memcpy(p, &d, sizeof(d));
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b, &why) < 0)
			break;
		memcpy(p, &b, sizeof(b));
		return 0;
	case CONF_STR:
		if (strlen(value) >= k->size) {
			conf_err(errs, file, line,
			    "%s.%s is longer than %zu bytes", k->section,
			    k->name, k->size - 1);
			return -1;
		}
		if ((double)strlen(value) < k->min) {
			conf_err(errs, file, line, "%s.%s must not be empty",
			    k->section, k->name);
			return -1;
		}
		memcpy(p, value, strlen(value) + 1);
		return 0;
	case CONF_CUSTOM:
		if (k->apply == NULL) {
			why = "key has no parser";
			break;
		}
		if (k->apply(k, dst, value, &why) < 0)
			break;
		return 0;
	}
	conf_err(errs, file, line, "%s.%s = '%.64s': %s", k->section, k->name,
	    value, why ? why : "invalid value");
	return -1;
}

const struct conf_key *
conf_find(const struct conf_key *tab, const char *section, const char *name)
{
	for (; tab->name != NULL; tab++)
		if (strcmp(tab->section, section) == 0 &&
		    strcmp(tab->name, name) == 0)
			return tab;
	return NULL;
}

static int
section_known(const struct conf_key *tab, const char *section)
{
	for (; tab->name != NULL; tab++)
		if (strcmp(tab->section, section) == 0)
			return 1;
	return 0;
}

int
conf_defaults(const struct conf_key *tab, void *dst, struct conf_errs *errs)
{
	int before = errs->n;

	for (; tab->name != NULL; tab++) {
		if (tab->def == NULL)
			continue;
		conf_apply(tab, dst, tab->def, "(built-in default)", 0, errs);
	}
	return errs->n > before ? -1 : 0;
}

struct load_ctx {
	const struct conf_key	*tab;
	void			*dst;
	unsigned char		*seen;	/* one flag per table entry */
	int			*seen_line;
};

static int
load_cb(void *vctx, const char *section, const char *key, const char *value,
    const char *file, int line, struct conf_errs *errs)
{
	struct load_ctx *c = vctx;
	const struct conf_key *k = conf_find(c->tab, section, key);
	size_t idx;

	if (k == NULL) {
		if (!section_known(c->tab, section))
			conf_err(errs, file, line, "unknown section [%s]",
			    section);
		else
			conf_err(errs, file, line,
			    "unknown key '%s' in section [%s]", key, section);
		return -1;
	}
	idx = (size_t)(k - c->tab);
	if (c->seen[idx] && !k->repeat) {
		conf_err(errs, file, line,
		    "duplicate key %s.%s (first set on line %d)", section, key,
		    c->seen_line[idx]);
		return -1;
	}
	c->seen[idx] = 1;
	c->seen_line[idx] = line;
	return conf_apply(k, c->dst, value, file, line, errs);
}

int
conf_load(const struct conf_key *tab, void *dst, const char *path,
    struct conf_errs *errs)
{
	struct load_ctx c = { tab, dst, NULL, NULL };
	size_t n = 0;
	int rc;

	while (tab[n].name != NULL)
		n++;
	c.seen = calloc(n + 1, 1);
	c.seen_line = calloc(n + 1, sizeof(int));
	if (c.seen == NULL || c.seen_line == NULL) {
		free(c.seen);
		free(c.seen_line);
		conf_err(errs, path, 0, "out of memory");
		return -1;
	}
	rc = conf_parse_cb(path, load_cb, &c, errs);
	free(c.seen);
	free(c.seen_line);
	return rc;
}

int
conf_set(const struct conf_key *tab, void *dst, const char *assignment,
    const char *origin, struct conf_errs *errs)
{
	char buf[CONF_LINE_MAX], *dot, *eq, *sec, *key, *val;
	const struct conf_key *k;

	if (strlen(assignment) >= sizeof(buf)) {
		conf_err(errs, origin, 0, "override too long");
		return -1;
	}
	strcpy(buf, assignment);
	eq = strchr(buf, '=');
	dot = strchr(buf, '.');
	if (eq == NULL || dot == NULL || dot > eq) {
		conf_err(errs, origin, 0,
		    "'%.64s' is not of the form section.key=value", assignment);
		return -1;
	}
	*eq = '\0';
	*dot = '\0';
	sec = trim(buf);
	key = trim(dot + 1);
	val = trim(eq + 1);
	if ((k = conf_find(tab, sec, key)) == NULL) {
		conf_err(errs, origin, 0, "unknown key '%s.%s'", sec, key);
		return -1;
	}
	return conf_apply(k, dst, val, origin, 0, errs);
}

void
conf_dump(const struct conf_key *tab, const void *src, FILE *fp)
{
	const char *cur = NULL;
	const char *p;
	int64_t i;
	uint64_t u;
	double d;
	int b;

	for (; tab->name != NULL; tab++) {
		if (cur == NULL || strcmp(cur, tab->section) != 0) {
			fprintf(fp, "%s[%s]\n", cur ? "\n" : "", tab->section);
			cur = tab->section;
		}
		p = (const char *)src + tab->off;
		fprintf(fp, "%s = ", tab->name);
		switch (tab->type) {
		case CONF_INT:
			memcpy(&i, p, sizeof(i));
			fprintf(fp, "%lld\n", (long long)i);
			break;
		case CONF_SIZE:
			memcpy(&u, p, sizeof(u));
			fprintf(fp, "%llu\n", (unsigned long long)u);
			break;
		case CONF_DOUBLE:
			memcpy(&d, p, sizeof(d));
			fprintf(fp, "%.17g\n", d);
			break;
		case CONF_BOOL:
			memcpy(&b, p, sizeof(b));
			fprintf(fp, "%s\n", b ? "yes" : "no");
			break;
		case CONF_STR:
			fprintf(fp, "%s\n", p);
			break;
		case CONF_CUSTOM:
			fprintf(fp, "# (list, not shown)\n");
			break;
		}
	}
}
