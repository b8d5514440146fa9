/* log: formats one line per event and writes it to fd 2 with a single write(2). */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic enum log_level log_threshold = LOG_INFO;
static char log_tag[64];

static const char *const level_names[LOG__MAX] = {
    "ERROR", /* LOG_ERR */
    "WARN",  /* LOG_WARN */
    "INFO",  /* LOG_INFO */
    "DEBUG", /* LOG_DEBUG */
};

int
log_set_level(const char *name)
{
    static const char *const names[LOG__MAX] = {"err", "warn", "info", "debug"};
    for (int i = 0; i < LOG__MAX; i++) {
        if (strcmp(name, names[i]) == 0) {
            log_threshold = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

void
log_set_tag(const char *tag)
{
    if (tag == NULL)
        log_tag[0] = '\0';
    else
        (void)snprintf(log_tag, sizeof(log_tag), "%s ", tag);
}

void
log_emit(enum log_level lvl, const char *file, const char *func, int with_errno, const char *fmt,
         ...)
{
    int saved = errno;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    k = snprintf(line, sizeof(line),
                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s%s:%s: ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_names[lvl], log_tag, base ? base + 1 : file, func);
    n = k > 0 ? (size_t)k : 0;
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        n += k > 0 ? (size_t)k : 0;
    }
    if (with_errno && n < sizeof(line)) {
        k = snprintf(line + n, sizeof(line) - n, ": %s", strerror(saved));
        n += k > 0 ? (size_t)k : 0;
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Control characters from client strings must not forge log lines. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    line[n++] = '\n';
    ssize_t w = write(2, line, n);
    (void)w;
    errno = saved;
}
