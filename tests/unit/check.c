/* check: failure reporting, the closing summary line and small file and string helpers for unit
 * tests. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>

int check_failures;
int check_count;

void
check_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    check_failures++;
    fprintf(stderr, "%s:%d: FAILED %s: ", file, line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
check_done(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, check_count - check_failures, check_failures);
    return check_failures == 0 ? 0 : 1;
}

bool
check_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

char *
check_mut(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {s};
    return u.m;
}
