/* modal_store: what labbox's processes share about Modal: the auth token and the ids that do not
 * change from job to job.
 *
 * Theory of operation. `labbox serve` and every `labbox supervise` are separate processes, each
 * with its own Modal client; without sharing, each would fetch its own auth token and look up
 * the same app, builder version and image again. The store is the directory <data_dir>/modal
 * (mode 0700) with two files, both mode 0600 and replaced atomically (write, fsync, rename):
 *
 *   token  the auth JWT from AuthTokenGet with its expiry and when it was fetched;
 *   ids    a JSON object of string ids by key ("app:<env>:<name>", "builder:<env>",
 *          "image:<definition hash>", see rpc/modal_client.c).
 *
 * Both are tied to an identity, a SHA-256 of the server URL and the token id and secret: what
 * was written for other credentials or another Modal is ignored (and overwritten by the next
 * write). A read
 * never blocks; a change (a token refresh, a put) runs under flock(2) on the file "lock", so that
 * of several processes whose token is due one fetches and the others read its result. The token
 * is a credential: it is in no file other than "token" and never in labbox's log.
 */
#ifndef LABBOX_MODAL_STORE_H
#define LABBOX_MODAL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"

#define MODAL_STORE_DIR       "modal"
#define MODAL_STORE_TOKEN_MAX 4096 /* bytes of a token we keep */
#define MODAL_STORE_VALUE_MAX 512  /* bytes of an id we keep */

struct modal_store;

/* A token as stored: the JWT (heap, the caller wipes and frees it), its expiry and fetch time
 * (CLOCK_REALTIME seconds). */
struct modal_store_token {
    char *token;
    int64_t exp_s;
    int64_t fetched_s;
};

/* modal_store_open: the store under data_dir (the directory is created 0700 if missing; an
 * existing one is narrowed to 0700) for the identity of server_url and the token. RC_IO (logged)
 * when it cannot be created or opened, and when data_dir or the store is not this user's (root
 * checking labbox's configuration neither makes nor uses it). modal_store_close: NULL-safe;
 * releases a held lock. */
enum rc modal_store_open(const char *data_dir, const char *server_url, const char *token_id,
                         const char *token_secret, struct modal_store **out) LB_MUST_CHECK;
void modal_store_close(struct modal_store *s);

/* modal_store_lock / _unlock: the exclusive lock for a read-modify-write (blocking). */
enum rc modal_store_lock(struct modal_store *s) LB_MUST_CHECK;
void modal_store_unlock(struct modal_store *s);

/* modal_store_token_read: the stored token of this identity. RC_NOTFOUND when there is none
 * (or it is someone else's, or unreadable: the caller then fetches a new one). */
enum rc modal_store_token_read(struct modal_store *s, struct modal_store_token *out) LB_MUST_CHECK;
/* modal_store_token_write: replace the stored token (the caller holds the lock). */
enum rc modal_store_token_write(struct modal_store *s,
                                const struct modal_store_token *t) LB_MUST_CHECK;
/* modal_store_token_wipe: wipe and free t->token. */
void modal_store_token_wipe(struct modal_store_token *t);

/* modal_store_get: the id stored under key into out (cap bytes). RC_NOTFOUND when absent;
 * RC_TOOBIG when it does not fit (out is then "", never a shortened id). */
enum rc modal_store_get(struct modal_store *s, const char *key, char *out,
                        size_t cap) LB_MUST_CHECK;
/* modal_store_put: store value under key (value NULL: remove key); takes the lock itself. */
enum rc modal_store_put(struct modal_store *s, const char *key, const char *value) LB_MUST_CHECK;

#endif
