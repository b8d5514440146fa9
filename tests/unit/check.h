/* check: typed assertions for unit tests; a failure prints file:line and both values, and the
 * test exits non-zero at the end (CHECK_*) or at once (REQUIRE_*). */
#ifndef LABBOX_CHECK_H
#define LABBOX_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern int check_failures;
extern int check_count;

void check_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* check_done prints "N passed, N failed" and returns the exit status for main(). */
int check_done(const char *suite);
/* check_write_file: path holds text afterwards (created or truncated); false on any error. */
bool check_write_file(const char *path, const char *text);
/* check_mut: a string literal as the char * that generated protobuf-c structs declare (they
 * are only read). */
char *check_mut(const char *s);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond))                                                                               \
            check_fail(__FILE__, __LINE__, #cond, "false");                                        \
    } while (0)

/* CHECK_FAIL: record a failure with a message (for paths that must not be reached). */
#define CHECK_FAIL(msg)                                                                            \
    do {                                                                                           \
        check_count++;                                                                             \
        check_fail(__FILE__, __LINE__, "reached", "%s", (msg));                                    \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long va_ = (long long)(a), vb_ = (long long)(b);                                      \
        check_count++;                                                                             \
        if (va_ != vb_)                                                                            \
            check_fail(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", va_, vb_);                \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        check_count++;                                                                             \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0)                                   \
            check_fail(__FILE__, __LINE__, #a " == " #b, "\"%s\" != \"%s\"", sa_ ? sa_ : "(null)", \
                       sb_ ? sb_ : "(null)");                                                      \
    } while (0)

#define CHECK_MEM(a, alen, b, blen)                                                                \
    do {                                                                                           \
        size_t la_ = (alen), lb_ = (blen);                                                         \
        check_count++;                                                                             \
        if (la_ != lb_ || (la_ > 0 && memcmp((a), (b), la_) != 0))                                 \
            check_fail(__FILE__, __LINE__, #a " == " #b, "%zu bytes vs %zu bytes differ", la_,     \
                       lb_);                                                                       \
    } while (0)

/* REQUIRE_VOID: REQUIRE for a void test function (it returns from that function). */
#define REQUIRE_VOID(cond)                                                                         \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_fail(__FILE__, __LINE__, #cond, "required");                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        check_count++;                                                                             \
        if (!(cond)) {                                                                             \
            check_fail(__FILE__, __LINE__, #cond, "required");                                     \
            return check_done(__FILE__);                                                           \
        }                                                                                          \
    } while (0)

#endif
