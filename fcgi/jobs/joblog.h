/* joblog: the append-only log.jsonl of one job; one JSON record per line, byte offsets as ids.
 *
 * Record: {"t": <ms epoch>, "stream": "stdout"|"stderr"|"system", "line": "...", "pos": N}
 * "pos" (stdout/stderr only) is how many bytes of that stream are accounted for once this
 * record is in the log: a re-attached supervisor resumes the stream there (no loss, no repeat).
 * Each record is one write(2) on an O_APPEND fd, so readers never see half a record once they
 * only consume up to the last newline.
 */
#ifndef LABBOX_JOBLOG_H
#define LABBOX_JOBLOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "rc.h"

enum joblog_stream {
    JOBLOG_STDOUT, /* the agent's stdout */
    JOBLOG_STDERR, /* the agent's stderr */
    JOBLOG_SYSTEM, /* labbox's own notes: state changes, limits */
    JOBLOG_STREAM__MAX
};

struct joblog {
    int fd;             /* log.jsonl, O_APPEND */
    uint64_t size;      /* bytes in the file */
    uint64_t max_bytes; /* agent records stop here; system records get a small extra margin */
    bool full;          /* the cap was hit */
    bool nospace;       /* a write failed because the host's disk is full (ENOSPC, EDQUOT) */
};

/* joblog_open: append to the log open on fd (O_APPEND; jl takes fd, also on failure). */
enum rc joblog_open(struct joblog *jl, int fd, uint64_t max_bytes) LB_MUST_CHECK;
void joblog_close(struct joblog *jl);

/* joblog_append: one record. RC_TOOBIG (nothing written, jl->full set) when an agent record
 * would take the file past max_bytes. line must be valid UTF-8 (logsplit guarantees it). */
enum rc joblog_append(struct joblog *jl, enum joblog_stream s, const char *line, size_t len,
                      uint64_t pos) LB_MUST_CHECK;
/* joblog_system: a printf-style system record. */
enum rc joblog_system(struct joblog *jl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* joblog_recover_positions: scan the log open read-write on fd (borrowed) and return the last
 * "pos" of stdout and stderr records (0 when none). A torn last line (no newline) is cut. */
enum rc joblog_recover_positions(int fd, uint64_t out_pos[2]) LB_MUST_CHECK;

/* joblog_record_text: one record (rec, len bytes, without its newline) in the text form of the
 * log (GET /logs, `labbox run`): *out_prefix "" for stdout, "[stderr] " or "[labbox] " (static)
 * and *out_line its line, borrowed from *out_obj, which the caller puts (also on false). false
 * for a record without a line. */
bool joblog_record_text(const char *rec, size_t len, json_object **out_obj, const char **out_prefix,
                        const char **out_line);

/* joblog_stream_str: "stdout", "stderr", "system". */
const char *joblog_stream_str(enum joblog_stream s);

#endif
