/* log: leveled one-line logging to fd 2: LEVEL job=<id> file:func: message. */
#ifndef LABBOX_LOG_H
#define LABBOX_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_ERR,   /* something failed that should not */
    LOG_WARN,  /* degraded but going on */
    LOG_INFO,  /* lifecycle events, client faults */
    LOG_DEBUG, /* chatty */
    LOG__MAX
};

/* The level at and below which lines are written; atomic: a reload (SIGHUP) changes it while
 * other threads log. */
extern _Atomic enum log_level log_threshold;

/* log_set_level parses "err", "warn", "info" or "debug"; returns 0, or -1 for an unknown name. */
int log_set_level(const char *name);
/* log_set_tag sets a process-wide prefix such as "job=<id>" (copied; NULL clears it). */
void log_set_tag(const char *tag);

void log_emit(enum log_level lvl, const char *file, const char *func, int with_errno,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define LOG_AT(lvl, errn, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) <= log_threshold)                                                                \
            log_emit((lvl), __FILE__, __func__, (errn), __VA_ARGS__);                              \
    } while (0)

#define log_err(...)   LOG_AT(LOG_ERR, 0, __VA_ARGS__)
#define log_warn(...)  LOG_AT(LOG_WARN, 0, __VA_ARGS__)
#define log_info(...)  LOG_AT(LOG_INFO, 0, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_DEBUG, 0, __VA_ARGS__)
/* The _errno forms append ": strerror(errno)"; call them right after the failing syscall. */
#define log_errno(...)  LOG_AT(LOG_ERR, 1, __VA_ARGS__)
#define log_warnno(...) LOG_AT(LOG_WARN, 1, __VA_ARGS__)

#endif
