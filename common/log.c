/*
 * log.c: stderr logging with a process tag, in the manner of OpenBSD's log.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *log_procname = "arceus";
static int log_level = LOG_LEVEL_INFO;

void
log_init(const char *procname, int level)
{
	if (procname != NULL)
		log_procname = procname;
	log_level = level;
}

void
log_setlevel(int level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return log_level;
}

void
vlog(int level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info",
	    "debug" };
	char buf[1024];

	if (level > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One fprintf per line so lines of concurrent threads don't mix. */
	fprintf(stderr, "%s: %s: %s\n", log_procname,
	    names[level < 0 ? 0 : level > 3 ? 3 : level], buf);
}

static void
vlog_errno(int level, int saved, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (level > log_level)
		return;
	fprintf(stderr, "%s: %s: %s: %s\n", log_procname,
	    level == LOG_LEVEL_ERR ? "error" : "warning", buf,
	    strerror(saved));
}

void
log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_LEVEL_WARN, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_errno(LOG_LEVEL_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
