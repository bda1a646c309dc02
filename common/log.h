/*
 * log.h: the one logging API of all Arceus processes (OpenBSD log.h style).
 *
 * Every line goes to stderr, tagged with the process name, so that the
 * journal (or a test harness) collects it.  log_warn and fatal append
 * strerror(errno); the *x variants do not.
 */
#ifndef ARC_LOG_H
#define ARC_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Sets the process tag and the verbosity (LOG_LEVEL_*). */
void	log_init(const char *procname, int level);
void	log_setlevel(int level);
int	log_getlevel(void);

void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	vlog(int level, const char *fmt, va_list ap)
	    __attribute__((format(printf, 2, 0)));

/* Startup failures only: print and exit(1). */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* Checks the level before the arguments are evaluated (Redis serverLog). */
#define log_debugx(...) do {						\
	if (log_getlevel() >= LOG_LEVEL_DEBUG)				\
		log_debug(__VA_ARGS__);					\
} while (0)

#endif /* ARC_LOG_H */
