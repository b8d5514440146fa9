/* fuzz_names: upload-name, input-path and output-path validation on arbitrary bytes.
 * Invariants: no crash; a reason exactly on failure; an accepted upload name is short, valid
 * UTF-8 (independent check), free of separators, controls, bidi controls and invisible
 * characters (found by their UTF-8 bytes) and is also an accepted input path; an accepted input
 * path is an accepted relative path whose every component is an accepted upload name; an
 * accepted relative path is valid UTF-8, within the caps, and each component (with a leading
 * dot made plain) is an accepted upload name. */
#include <string.h>

#include "defaults.h"
#include "fuzz.h"
#include "parse/names.h"

static bool
is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* has_invisible: the UTF-8 bytes of U+061C, U+200B..U+200F, U+2028..U+202E, U+2060..U+206F or
 * U+FEFF (in valid UTF-8 a byte match is a code point match). */
static bool
has_invisible(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == 0xd8 && p[i + 1] == 0x9c)
            return true;
        if (i + 2 >= n)
            continue;
        if (p[i] == 0xe2 && p[i + 1] == 0x80 &&
            ((p[i + 2] >= 0x8b && p[i + 2] <= 0x8f) || (p[i + 2] >= 0xa8 && p[i + 2] <= 0xae)))
            return true;
        if (p[i] == 0xe2 && p[i + 1] == 0x81 && p[i + 2] >= 0xa0 && p[i + 2] <= 0xaf)
            return true;
        if (p[i] == 0xef && p[i + 1] == 0xbb && p[i + 2] == 0xbf)
            return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct span in = {(const char *)data, size};
    const char *why = NULL;
    enum rc up, rel, inp;
    char comp[NAME_MAX_BYTES + 1];

    up = names_check_upload(in, &why);
    FUZZ_ASSERT(up == RC_OK || up == RC_BADREQ);
    FUZZ_ASSERT((up == RC_OK) == (why == NULL));
    rel = names_check_relpath(in, &why);
    FUZZ_ASSERT(rel == RC_OK || rel == RC_BADREQ);
    FUZZ_ASSERT((rel == RC_OK) == (why == NULL));
    inp = names_check_input_path(in, &why);
    FUZZ_ASSERT(inp == RC_OK || inp == RC_BADREQ);
    FUZZ_ASSERT((inp == RC_OK) == (why == NULL));

    if (up == RC_OK) {
        FUZZ_ASSERT(size >= 1 && size <= NAME_MAX_BYTES);
        FUZZ_ASSERT(fuzz_utf8_valid(data, size));
        FUZZ_ASSERT(!has_invisible(data, size));
        FUZZ_ASSERT(data[0] != '.' && data[size - 1] != '.' && data[size - 1] != ' ');
        for (size_t i = 0; i < size; i++)
            FUZZ_ASSERT(!is_ctl(data[i]) && data[i] != '/' && data[i] != '\\');
        FUZZ_ASSERT(inp == RC_OK);
    }
    if (inp == RC_OK) {
        FUZZ_ASSERT(rel == RC_OK);
        for (size_t start = 0; start <= size;) {
            const uint8_t *slash = memchr(data + start, '/', size - start);
            size_t end = slash ? (size_t)(slash - data) : size;
            FUZZ_ASSERT(names_check_upload((struct span){in.p + start, end - start}, &why) ==
                        RC_OK);
            start = end + 1;
        }
    }
    if (rel == RC_OK) {
        size_t start = 0, depth = 0;
        FUZZ_ASSERT(size >= 1 && size <= OUTPUT_PATH_MAX);
        FUZZ_ASSERT(fuzz_utf8_valid(data, size));
        FUZZ_ASSERT(!has_invisible(data, size));
        while (start <= size) {
            const uint8_t *slash = memchr(data + start, '/', size - start);
            size_t end = slash ? (size_t)(slash - data) : size;
            size_t n = end - start;
            depth++;
            FUZZ_ASSERT(n >= 1 && n <= NAME_MAX_BYTES);
            memcpy(comp, data + start, n);
            if (comp[0] == '.')
                comp[0] = 'x';
            FUZZ_ASSERT(names_check_upload((struct span){comp, n}, &why) == RC_OK);
            start = end + 1;
        }
        FUZZ_ASSERT(depth <= OUTPUT_DEPTH_MAX);
    }
    return 0;
}
