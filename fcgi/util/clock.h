/* clock: the one source of time in labbox: wall-clock and monotonic milliseconds, ISO stamps. */
#ifndef LABBOX_CLOCK_H
#define LABBOX_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* clock_real_ms: CLOCK_REALTIME in ms since the epoch (records, logs, the API's times). */
int64_t clock_real_ms(void);
/* clock_mono_ms: CLOCK_MONOTONIC in ms (deadlines, intervals, latencies). */
int64_t clock_mono_ms(void);
/* clock_iso: "2026-11-26T12:00:00.123Z" for ms since the epoch (UTC; out >= 25 bytes). */
void clock_iso(int64_t ms, char *out, size_t outlen);

#endif
