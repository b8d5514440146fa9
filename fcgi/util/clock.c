/* clock: wall-clock and monotonic milliseconds, ISO 8601 stamps. */
#include "util/clock.h"

#include <stdio.h>
#include <time.h>

static int64_t
ms_of(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_real_ms(void)
{
    return ms_of(CLOCK_REALTIME);
}

int64_t
clock_mono_ms(void)
{
    return ms_of(CLOCK_MONOTONIC);
}

void
clock_iso(int64_t ms, char *out, size_t outlen)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (outlen == 0)
        return;
    out[0] = '\0';
    if (gmtime_r(&s, &tm) == NULL)
        return;
    /* A stamp that does not fit is left empty, never cut: the caller's buffer is too small. */
    int k = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    if (k < 0 || (size_t)k >= outlen)
        out[0] = '\0';
}
