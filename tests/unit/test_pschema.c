/* test_pschema: agent parameter schemas and the check of params, in params.py's words; every
 * proper prefix (a split) and every one-byte mutation of valid documents. The words are also
 * compared with params.py itself over thousands of random cases by pschema_parity.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "parse/pschema.h"

#define BASE_PROPS                                                                                 \
    "\"s\": {\"type\": \"string\", \"maxLength\": 3, \"default\": \"ab\"},"                        \
    "\"e\": {\"type\": \"string\", \"enum\": [\"sd\", \"se\"]},"                                   \
    "\"n\": {\"type\": \"number\", \"minimum\": 0.5, \"maximum\": 2},"                             \
    "\"i\": {\"type\": \"integer\", \"minimum\": 1},"                                              \
    "\"b\": {\"type\": \"boolean\", \"default\": false},"                                          \
    "\"a\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"                             \
    "\"k\": {\"type\": \"integer\", \"enum\": [1, 2, 3]}"
static const char BASE[] = "{\"type\": \"object\", \"additionalProperties\": false, "
                           "\"properties\": {" BASE_PROPS "}}";

/* compile text; "ok" or the reason, in a static buffer. */
static const char *
schema_verdict(const char *text)
{
    static char why[PSCHEMA_DETAIL_MAX];
    struct pschema *s = NULL;
    enum rc rc = pschema_compile(text, strlen(text), &s, why, sizeof(why));
    pschema_free(s);
    if (rc == RC_OK)
        return "ok";
    return rc == RC_BADREQ && why[0] != '\0' ? why : "(no reason)";
}

/* The schema with one more property x (a string literal). */
#define WITH_PROP(prop) "{\"type\": \"object\", \"properties\": {" BASE_PROPS ", \"x\": " prop "}}"

static void
test_schemas(void)
{
    static const struct {
        const char *schema, *why;
    } cases[] = {
        {BASE, "ok"},
        {"{\"type\": \"object\", \"properties\": {}}", "ok"},
        {"{\"type\": \"object\", \"properties\": {}, \"title\": \"t\", \"description\": \"d\", "
         "\"$schema\": \"x\", \"$comment\": \"c\", \"$id\": \"i\"}",
         "ok"},
        {"[1]", "the schema is not a JSON object"},
        {"\"x\"", "the schema is not a JSON object"},
        {"{\"properties\": {}}", "\"type\" must be \"object\""},
        {"{\"type\": \"object\"}", "\"properties\" must be an object"},
        {"{\"type\": \"object\", \"properties\": null}", "\"properties\" must be an object"},
        {"{\"type\": \"object\", \"properties\": {}, \"required\": [\"a\"], \"$defs\": {}}",
         "keyword(s) outside labbox's subset: $defs, required"},
        {"{\"type\": \"object\", \"properties\": {}, \"additionalProperties\": {}}",
         "\"additionalProperties\" must be true or false"},
        {"{\"type\": \"object\", \"properties\": {}, \"title\": null}",
         "\"title\" must be a string"},
        {"{\"type\": \"object\", \"properties\": {\"\": {\"type\": \"string\"}}}",
         "a property has an empty name"},
        {WITH_PROP("{\"type\": \"null\"}"),
         "property x: \"type\" must be one of string, number, integer, boolean, array"},
        {WITH_PROP("3"), "property x: it is not a JSON object"},
        {WITH_PROP("{\"type\": \"string\", \"pattern\": \"a+\"}"),
         "property x: keyword(s) outside labbox's subset: pattern"},
        {WITH_PROP("{\"type\": \"array\"}"), "property x: \"items\" is required for arrays, only "
                                             "for them, and must be {\"type\": \"string\"}"},
        {WITH_PROP("{\"type\": \"array\", \"items\": {\"type\": \"string\", \"x\": 1}}"),
         "property x: \"items\" is required for arrays, only for them, and must be {\"type\": "
         "\"string\"}"},
        {WITH_PROP("{\"type\": \"string\", \"minimum\": 1}"),
         "property x: \"minimum\" is a number, for number and integer only"},
        {WITH_PROP("{\"type\": \"number\", \"maximum\": \"2\"}"),
         "property x: \"maximum\" is a number, for number and integer only"},
        {WITH_PROP("{\"type\": \"string\", \"maxLength\": 2.0}"),
         "property x: \"maxLength\" is a non-negative integer, for strings only"},
        {WITH_PROP("{\"type\": \"string\", \"maxLength\": -1}"),
         "property x: \"maxLength\" is a non-negative integer, for strings only"},
        {WITH_PROP("{\"type\": \"boolean\", \"enum\": [true]}"),
         "property x: \"enum\" is a non-empty list, not for boolean or array"},
        {WITH_PROP("{\"type\": \"string\", \"enum\": []}"),
         "property x: \"enum\" is a non-empty list, not for boolean or array"},
        {WITH_PROP("{\"type\": \"string\", \"enum\": [\"a\", 1]}"),
         "property x: enum value 1: must be a string"},
        {WITH_PROP("{\"type\": \"string\", \"enum\": [\"a\", \"\\u00e9\\n\"], \"maxLength\": 1}"),
         "property x: enum value \"\\u00e9\\n\": must be at most 1 characters"},
        {WITH_PROP("{\"type\": \"integer\", \"enum\": [1, 1.0]}"),
         "property x: \"enum\" repeats a value"},
        {WITH_PROP("{\"type\": \"number\", \"minimum\": 0, \"default\": -1}"),
         "property x: default: must be at least 0"},
        {WITH_PROP("{\"type\": \"number\", \"minimum\": 1e-05, \"maximum\": 2e15, \"default\": "
                   "1e16}"),
         "property x: default: must be from 1e-05 to 2000000000000000.0"},
        {WITH_PROP("{\"type\": \"number\", \"maximum\": 1.5e16, \"default\": 1e300}"),
         "property x: default: must be at most 1.5e+16"},
        {WITH_PROP("{\"type\": \"string\", \"default\": null}"), "property x: default: must be a "
                                                                 "string"},
        {WITH_PROP("{\"type\": \"string\", \"enum\": [\"a\"], \"default\": \"b\"}"),
         "property x: default: must be one of \"a\""},
        {WITH_PROP("{\"type\": \"string\", \"title\": 3}"),
         "property x: \"title\" must be a string"},
        {"{\"type\": \"object\", \"properties\": {}", "not valid JSON (at byte 35)"},
        {"{'type': 'object', 'properties': {}}", "not valid JSON (at byte 1)"},
        {"{\"type\": \"object\", \"properties\": {}, \"title\": NaN}",
         "not valid JSON (at byte 46)"},
        {"{\"type\": \"object\", \"properties\": {}} x", "not valid JSON (at byte 37)"},
        {"\xef\xbb\xbf{\"type\": \"object\", \"properties\": {}}", "not valid JSON (at byte 0)"},
        {"{\"type\": \"object\", \"properties\": {}, \"title\": \"\xc0\xaf\"}",
         "not valid JSON (at byte 47)"},
        {"", "not valid JSON (at byte 0)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = schema_verdict(cases[i].schema);
        if (strcmp(got, cases[i].why) != 0)
            check_fail(__FILE__, __LINE__, cases[i].schema, "\"%s\" != \"%s\"", got, cases[i].why);
        check_count++;
    }
}

/* Check params against s: "ok", or "<rc> <param>|<detail>". */
static const char *
params_verdict(const struct pschema *s, const char *text)
{
    static char out[PSCHEMA_DETAIL_MAX + NAME_MAX_BYTES + 32];
    struct pschema_verdict v;
    enum rc rc = pschema_check(s, text, strlen(text), &v);
    if (rc == RC_OK)
        return "ok";
    (void)snprintf(out, sizeof(out), "%s %s|%s",
                   rc == RC_BADREQ        ? "bad_request"
                   : rc == RC_UNSUPPORTED ? "bad_params"
                                          : "other",
                   v.param, v.detail);
    return out;
}

static void
test_values(void)
{
    static const struct {
        const char *params, *want;
    } cases[] = {
        {"{}", "ok"},
        {"{\"s\": \"abc\", \"e\": \"se\", \"n\": 0.5, \"i\": 3.0, \"b\": true, \"a\": [], \"k\": "
         "2.0}",
         "ok"},
        {"{\"s\": \"\\u00e4\\u00f6\\u00fc\", \"n\": 2, \"i\": 100000000000000000000, \"a\": "
         "[\"x\", \"y\"]}",
         "ok"},
        {"{\"s\": \"abcd\"}", "bad_params s|s: must be at most 3 characters"},
        {"{\"s\": 1}", "bad_params s|s: must be a string"},
        {"{\"s\": null}", "bad_params s|s: must be a string"},
        {"{\"e\": \"iqr\"}", "bad_params e|e: must be one of \"sd\", \"se\""},
        {"{\"n\": 0.4}", "bad_params n|n: must be from 0.5 to 2"},
        {"{\"n\": \"1\"}", "bad_params n|n: must be a number"},
        {"{\"n\": true}", "bad_params n|n: must be a number"},
        {"{\"n\": 1e400}", "bad_params n|n: must be a number"},
        {"{\"i\": 3.5}", "bad_params i|i: must be an integer"},
        {"{\"i\": 0}", "bad_params i|i: must be at least 1"},
        {"{\"i\": false}", "bad_params i|i: must be an integer"},
        {"{\"b\": 0}", "bad_params b|b: must be true or false"},
        {"{\"a\": \"x\"}", "bad_params a|a: must be a list of strings"},
        {"{\"a\": [\"x\", 1]}", "bad_params a|a: must be a list of strings"},
        {"{\"k\": 4}", "bad_params k|k: must be one of 1, 2, 3"},
        {"{\"k\": true}", "bad_params k|k: must be an integer"},
        {"{\"zzz\": 1}",
         "bad_params zzz|zzz: not a parameter of this agent (it has: s, e, n, i, b, a, k)"},
        {"{\"s\": \"x\", \"n\": 9, \"i\": 2, \"b\\u0001\\n\": 1}",
         "bad_params n|n: must be from 0.5 to 2; b??: not a parameter of this agent (it has: s, "
         "e, n, i, b, a, k)"},
        {"[1]", "bad_request |params must be a JSON object"},
        {"{\"s\": 1,}", "bad_request |params must be a JSON object: it is not valid JSON"},
        {"", "bad_request |params must be a JSON object: it is not valid JSON"},
    };
    char why[256];
    struct pschema *s = NULL;
    REQUIRE_VOID(pschema_compile(BASE, strlen(BASE), &s, why, sizeof(why)) == RC_OK);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_STR(params_verdict(s, cases[i].params), cases[i].want);
    pschema_free(s);

    /* Without additionalProperties false, other names pass unchecked; without a schema, any
     * object passes. */
    static const char open[] = "{\"type\": \"object\", \"properties\": {\"n\": {\"type\": "
                               "\"number\"}}}";
    REQUIRE_VOID(pschema_compile(open, strlen(open), &s, why, sizeof(why)) == RC_OK);
    CHECK_STR(params_verdict(s, "{\"other\": [null], \"n\": 1}"), "ok");
    CHECK_STR(params_verdict(s, "{\"n\": \"1\"}"), "bad_params n|n: must be a number");
    pschema_free(s);
    CHECK_STR(params_verdict(NULL, "{\"anything\": {\"a\": null}}"), "ok");
    CHECK_STR(params_verdict(NULL, "3"), "bad_request |params must be a JSON object");
}

/* Long texts are cut at a character boundary with "...", never overflowing. */
static void
test_cuts(void)
{
    char doc[8192], why[64];
    struct pschema *s = NULL;
    struct pschema_verdict v;
    size_t n = (size_t)snprintf(doc, sizeof(doc), "{\"type\": \"object\", \"properties\": {}, ");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\"k\\u00e9%03d\": 1, ", i);
    (void)snprintf(doc + n, sizeof(doc) - n, "\"z\": 1}");
    CHECK_INT(pschema_compile(doc, strlen(doc), &s, why, sizeof(why)), RC_BADREQ);
    CHECK(strlen(why) <= sizeof(why) - 1);
    CHECK(strncmp(why,
                  "keyword(s) outside labbox's subset: k\xc3\xa9"
                  "000, k",
                  40) == 0);
    CHECK(strcmp(why + strlen(why) - 3, "...") == 0);
    CHECK(((unsigned char)why[strlen(why) - 4] & 0xc0) != 0xc0); /* no lead byte left alone */

    REQUIRE_VOID(pschema_compile(BASE, strlen(BASE), &s, why, sizeof(why)) == RC_OK);
    n = (size_t)snprintf(doc, sizeof(doc), "{");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(doc + n, sizeof(doc) - n, "%s\"\\u20ac%02d-%0200d\": 1", i ? "," : "",
                              i, 0);
    (void)snprintf(doc + n, sizeof(doc) - n, "}");
    CHECK_INT(pschema_check(s, doc, strlen(doc), &v), RC_UNSUPPORTED);
    CHECK_INT(strlen(v.param), NAME_MAX_BYTES); /* "€00-000..." cut to 200 bytes */
    CHECK(strncmp(v.param,
                  "\xe2\x82\xac"
                  "00-000",
                  9) == 0);
    CHECK(strlen(v.detail) < sizeof(v.detail));
    CHECK(strcmp(v.detail + strlen(v.detail) - 3, "...") == 0);
    pschema_free(s);
}

/* Every proper prefix of a valid document is refused as not JSON (a document split anywhere),
 * and every one-byte change gives a verdict that is stable and well-formed. */
static void
test_splits_and_mutations(void)
{
    static const char params[] = "{\"s\": \"ab\", \"n\": 1.25, \"a\": [\"x\", \"\\u00e9\"], "
                                 "\"b\": false, \"k\": 3}";
    static const char swaps[] = "\"{}[],:0-.eE\\ an\x01\xc3\xff";
    char why[PSCHEMA_DETAIL_MAX], why2[PSCHEMA_DETAIL_MAX], buf[sizeof(BASE) + 1];
    struct pschema *s = NULL, *s2 = NULL;
    struct pschema_verdict v, v2;
    REQUIRE_VOID(pschema_compile(BASE, strlen(BASE), &s, why, sizeof(why)) == RC_OK);
    CHECK_INT(pschema_check(s, params, strlen(params), &v), RC_OK);
    for (size_t cut = 0; cut < strlen(BASE); cut++) {
        CHECK_INT(pschema_compile(BASE, cut, &s2, why, sizeof(why)), RC_BADREQ);
        CHECK(strncmp(why, "not valid JSON", 14) == 0);
    }
    for (size_t cut = 0; cut < strlen(params); cut++)
        CHECK_INT(pschema_check(s, params, cut, &v), RC_BADREQ);
    for (size_t at = 0; at < strlen(BASE); at++) {
        for (size_t k = 0; k < sizeof(swaps) - 1; k++) {
            memcpy(buf, BASE, sizeof(BASE));
            buf[at] = swaps[k];
            enum rc a = pschema_compile(buf, strlen(BASE), &s2, why, sizeof(why));
            pschema_free(s2);
            enum rc b = pschema_compile(buf, strlen(BASE), &s2, why2, sizeof(why2));
            CHECK(a == RC_OK || a == RC_BADREQ);
            CHECK_INT(a, b);
            if (a == RC_BADREQ)
                CHECK(why[0] != '\0' && strcmp(why, why2) == 0);
            pschema_free(s2);
            s2 = NULL;
        }
    }
    for (size_t at = 0; at < strlen(params); at++) {
        for (size_t k = 0; k < sizeof(swaps) - 1; k++) {
            char p[sizeof(params)];
            memcpy(p, params, sizeof(params));
            p[at] = swaps[k];
            enum rc a = pschema_check(s, p, strlen(params), &v);
            enum rc b = pschema_check(s, p, strlen(params), &v2);
            CHECK(a == RC_OK || a == RC_BADREQ || a == RC_UNSUPPORTED);
            CHECK_INT(a, b);
            CHECK(memcmp(&v, &v2, sizeof(v)) == 0);
            if (a == RC_UNSUPPORTED) {
                size_t pl = strlen(v.param);
                CHECK(pl > 0 && strncmp(v.detail, v.param, pl) == 0 && v.detail[pl] == ':');
            }
            if (a == RC_BADREQ)
                CHECK(v.param[0] == '\0' && strncmp(v.detail, "params must be", 14) == 0);
        }
    }
    pschema_free(s);
}

/* The schema document is kept whole for GET /api/agent. */
static void
test_doc(void)
{
    char why[128];
    struct pschema *s = NULL;
    REQUIRE_VOID(pschema_compile(BASE, strlen(BASE), &s, why, sizeof(why)) == RC_OK);
    json_object *props = NULL, *e = NULL;
    CHECK(json_object_object_get_ex(pschema_doc(s), "properties", &props));
    CHECK(json_object_object_get_ex(props, "e", &e));
    CHECK_INT(json_object_object_length(props), 7);
    pschema_free(s);
    pschema_free(NULL);
}

int
main(void)
{
    test_schemas();
    test_values();
    test_cuts();
    test_splits_and_mutations();
    test_doc();
    return check_done("pschema");
}
