/* modal_store: the auth token and stable Modal ids shared by labbox's processes, under
 * <data_dir>/modal (0700 directory, 0600 files, atomic replace, flock for changes). */
#include "rpc/modal_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "json.h"
#include "log.h"
#include "util/fsutil.h"
#include "util/sha256.h"

#define TOKEN_FILE  "token"
#define IDS_FILE    "ids"
#define LOCK_FILE   "lock"
#define TOKEN_MAGIC "labbox-modal-token 1"
#define IDS_MAX     (256 * 1024) /* bytes of the ids file we read */

struct modal_store {
    int dirfd;
    int lockfd;        /* open while locked, else -1 */
    char identity[65]; /* hex SHA-256 of server URL and token id */
};

enum rc
modal_store_open(const char *data_dir, const char *server_url, const char *token_id,
                 const char *token_secret, struct modal_store **out)
{
    char path[4096];
    struct sha256 h;
    *out = NULL;
    int k = snprintf(path, sizeof(path), "%s/" MODAL_STORE_DIR, data_dir);
    if (k < 0 || (size_t)k >= sizeof(path))
        return RC_TOOBIG;
    /* Only data_dir's owner makes or uses the store: what another user (root running
     * check-config or doctor against labbox's data_dir) made there, labbox could not use. */
    struct stat st;
    if (stat(data_dir, &st) != 0 || st.st_uid != geteuid()) {
        log_info("Modal: %s is not this user's: its shared store is left alone", data_dir);
        return RC_IO;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        log_errno("mkdir %s", path);
        return RC_IO;
    }
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        log_errno("open %s", path);
        return RC_IO;
    }
    if (fstat(fd, &st) != 0 || st.st_uid != geteuid() ||
        ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) != 0)) {
        log_errno("making %s private", path);
        (void)close(fd);
        return RC_IO;
    }
    struct modal_store *s = calloc(1, sizeof(*s));
    if (s == NULL || !sha256_init(&h)) {
        free(s);
        (void)close(fd);
        return RC_NOMEM;
    }
    sha256_update(&h, server_url, strlen(server_url));
    sha256_update(&h, "\n", 1);
    sha256_update(&h, token_id, strlen(token_id));
    sha256_update(&h, "\n", 1);
    sha256_update(&h, token_secret, strlen(token_secret));
    sha256_hex(&h, s->identity);
    s->dirfd = fd;
    s->lockfd = -1;
    *out = s;
    return RC_OK;
}

void
modal_store_close(struct modal_store *s)
{
    if (s == NULL)
        return;
    modal_store_unlock(s);
    (void)close(s->dirfd);
    free(s);
}

enum rc
modal_store_lock(struct modal_store *s)
{
    if (s->lockfd >= 0)
        return RC_OK;
    int fd = openat(s->dirfd, LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_errno("open %s/" LOCK_FILE, MODAL_STORE_DIR);
        return RC_IO;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            log_errno("flock %s/" LOCK_FILE, MODAL_STORE_DIR);
            (void)close(fd);
            return RC_IO;
        }
    }
    s->lockfd = fd;
    return RC_OK;
}

void
modal_store_unlock(struct modal_store *s)
{
    if (s == NULL || s->lockfd < 0)
        return;
    (void)close(s->lockfd); /* releases the flock */
    s->lockfd = -1;
}

void
modal_store_token_wipe(struct modal_store_token *t)
{
    if (t->token != NULL)
        explicit_bzero(t->token, strlen(t->token));
    free(t->token);
    t->token = NULL;
}

/* The next line of *p (up to '\n', which must be there) as a NUL-terminated string in place. */
static char *
next_line(char **p)
{
    char *nl = strchr(*p, '\n');
    if (nl == NULL)
        return NULL;
    *nl = '\0';
    char *line = *p;
    *p = nl + 1;
    return line;
}

enum rc
modal_store_token_read(struct modal_store *s, struct modal_store_token *out)
{
    char *text = NULL, *p;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    enum rc rc = fs_read_all(s->dirfd, TOKEN_FILE, MODAL_STORE_TOKEN_MAX + 256, &text, &len);
    if (rc != RC_OK)
        return rc == RC_NOTFOUND ? RC_NOTFOUND : (rc == RC_NOMEM ? RC_NOMEM : RC_NOTFOUND);
    p = text;
    const char *magic = next_line(&p), *id = next_line(&p), *exp = next_line(&p);
    const char *fetched = next_line(&p), *tok = next_line(&p);
    char *end1 = NULL, *end2 = NULL;
    rc = RC_NOTFOUND;
    if (magic == NULL || tok == NULL || strcmp(magic, TOKEN_MAGIC) != 0 ||
        strcmp(id, s->identity) != 0 || tok[0] == '\0')
        goto out;
    out->exp_s = strtoll(exp, &end1, 10);
    out->fetched_s = strtoll(fetched, &end2, 10);
    if (*end1 != '\0' || *end2 != '\0' || out->exp_s <= 0)
        goto out;
    out->token = strdup(tok);
    rc = out->token != NULL ? RC_OK : RC_NOMEM;
out:
    explicit_bzero(text, len);
    free(text);
    return rc;
}

enum rc
modal_store_token_write(struct modal_store *s, const struct modal_store_token *t)
{
    size_t cap = strlen(t->token) + 256;
    char *buf = malloc(cap);
    if (buf == NULL)
        return RC_NOMEM;
    int k = snprintf(buf, cap, TOKEN_MAGIC "\n%s\n%" PRId64 "\n%" PRId64 "\n%s\n", s->identity,
                     t->exp_s, t->fetched_s, t->token);
    enum rc rc = k > 0 && (size_t)k < cap
                     ? fs_write_atomic_mode(s->dirfd, TOKEN_FILE, buf, (size_t)k, 0600)
                     : RC_TOOBIG;
    explicit_bzero(buf, cap);
    free(buf);
    return rc;
}

/* The ids object of this identity (a new empty one when the file is missing, unreadable or
 * someone else's); *out owned by the caller. */
static enum rc
ids_load(struct modal_store *s, json_object **out)
{
    char *text = NULL;
    size_t len = 0;
    json_object *root = NULL, *ids = NULL;
    *out = NULL;
    enum rc rc = fs_read_all(s->dirfd, IDS_FILE, IDS_MAX, &text, &len);
    if (rc == RC_NOMEM)
        return rc;
    if (rc == RC_OK)
        root = json_tokener_parse(text);
    free(text);
    const char *id = json_get_str(root, "identity");
    if (id != NULL && strcmp(id, s->identity) == 0 &&
        json_object_object_get_ex(root, "ids", &ids) && json_object_is_type(ids, json_type_object))
        *out = json_object_get(ids);
    json_object_put(root);
    if (*out == NULL)
        *out = json_object_new_object();
    return *out != NULL ? RC_OK : RC_NOMEM;
}

enum rc
modal_store_get(struct modal_store *s, const char *key, char *out, size_t cap)
{
    json_object *ids = NULL;
    out[0] = '\0';
    enum rc rc = ids_load(s, &ids);
    if (rc != RC_OK)
        return rc;
    const char *v = json_get_str(ids, key);
    if (v == NULL || v[0] == '\0') {
        rc = RC_NOTFOUND;
    } else {
        int k = snprintf(out, cap, "%s", v);
        if (k < 0 || (size_t)k >= cap) {
            out[0] = '\0';
            rc = RC_TOOBIG;
        }
    }
    json_object_put(ids);
    return rc;
}

enum rc
modal_store_put(struct modal_store *s, const char *key, const char *value)
{
    json_object *ids = NULL, *root = NULL;
    bool locked_here = s->lockfd < 0;
    enum rc rc = modal_store_lock(s);
    if (rc != RC_OK)
        return rc;
    rc = ids_load(s, &ids);
    if (rc != RC_OK)
        goto out;
    if (value == NULL)
        json_object_object_del(ids, key);
    else if (!json_set_str(ids, key, value))
        rc = RC_NOMEM;
    root = json_object_new_object();
    if (rc == RC_OK && (root == NULL || !json_set_str(root, "identity", s->identity) ||
                        json_object_object_add(root, "ids", json_object_get(ids)) != 0))
        rc = RC_NOMEM;
    if (rc == RC_OK) {
        const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
        rc = fs_write_atomic_mode(s->dirfd, IDS_FILE, text, strlen(text), 0600);
    }
out:
    json_object_put(root);
    json_object_put(ids);
    if (locked_here)
        modal_store_unlock(s);
    return rc;
}
