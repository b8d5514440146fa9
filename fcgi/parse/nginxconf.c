/* nginxconf: nginx's tokenizer, as far as finding the main context's `user` needs it. */
#include "parse/nginxconf.h"

#include <stdbool.h>
#include <string.h>

enum tok_kind { TOK_WORD, TOK_SEMI, TOK_OPEN, TOK_CLOSE, TOK_END, TOK_BAD };

struct scan {
    const char *p, *end;
    char word[NGINXCONF_NAME_MAX]; /* the last word, cut at the cap (long says so) */
    size_t n;
    bool long_word;
};

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
put(struct scan *s, char c)
{
    if (s->n + 1 < sizeof(s->word))
        s->word[s->n++] = c;
    else
        s->long_word = true;
}

/* word: a word at s->p, quoted or bare, with backslash escapes. */
static enum tok_kind
word(struct scan *s)
{
    char quote = '\0';
    if (*s->p == '"' || *s->p == '\'')
        quote = *s->p++;
    bool closed = quote == '\0';
    s->n = 0;
    s->long_word = false;
    while (s->p < s->end) {
        char c = *s->p;
        if (quote != '\0' && c == quote) {
            s->p++;
            closed = true;
            /* nginx wants a separator after a closing quote. */
            if (s->p < s->end && !is_space(*s->p) && *s->p != ';' && *s->p != '{')
                return TOK_BAD;
            break;
        }
        if (quote == '\0' && (is_space(c) || c == ';' || c == '{' || c == '}'))
            break;
        if (c == '\\' && s->p + 1 < s->end) {
            s->p++;
            c = *s->p;
        }
        put(s, c);
        s->p++;
    }
    s->word[s->n] = '\0';
    return closed ? TOK_WORD : TOK_BAD; /* an unterminated quote */
}

static enum tok_kind
next(struct scan *s)
{
    for (;;) {
        while (s->p < s->end && is_space(*s->p))
            s->p++;
        if (s->p == s->end)
            return TOK_END;
        if (*s->p != '#')
            break;
        while (s->p < s->end && *s->p != '\n')
            s->p++;
    }
    switch (*s->p) {
    case ';':
        s->p++;
        return TOK_SEMI;
    case '{':
        s->p++;
        return TOK_OPEN;
    case '}':
        s->p++;
        return TOK_CLOSE;
    default:
        return word(s);
    }
}

enum rc
nginxconf_user(const char *text, size_t len, char user[NGINXCONF_NAME_MAX],
               char group[NGINXCONF_NAME_MAX])
{
    struct scan s = {.p = text, .end = text + len};
    size_t depth = 0, nwords = 0;
    bool in_user = false, found = false, bad_user = false;
    user[0] = group[0] = '\0';
    for (;;) {
        enum tok_kind k = next(&s);
        if (k == TOK_END && depth == 0 && nwords == 0 && found)
            return RC_OK;
        if (k == TOK_END) {
            user[0] = group[0] = '\0';
            return depth != 0 || nwords != 0 ? RC_BADREQ : RC_NOTFOUND;
        }
        if (k == TOK_WORD) {
            if (nwords == 0)
                in_user = depth == 0 && !found && !s.long_word && s.n == 4 &&
                          memcmp(s.word, "user", 4) == 0;
            /* A name is non-empty and has no NUL byte (nginx would pass it to getpwnam cut). */
            else if (in_user &&
                     (nwords > 2 || s.long_word || s.n == 0 || memchr(s.word, '\0', s.n) != NULL))
                bad_user = true;
            else if (in_user)
                memcpy(nwords == 1 ? user : group, s.word, s.n + 1);
            nwords++;
            continue;
        }
        if (k == TOK_SEMI && in_user && (bad_user || nwords < 2))
            k = TOK_BAD;
        else if (k == TOK_SEMI && in_user)
            found = true;
        if (k == TOK_OPEN)
            depth++;
        else if (k == TOK_CLOSE && (nwords != 0 || depth-- == 0))
            k = TOK_BAD;
        if (k == TOK_BAD) {
            user[0] = group[0] = '\0';
            return RC_BADREQ;
        }
        in_user = bad_user = false;
        nwords = 0;
    }
}
