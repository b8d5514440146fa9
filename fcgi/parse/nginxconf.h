/* nginxconf: the user nginx's worker processes run as, from the text of nginx's main
 * configuration file (the `user` directive of its main context). Pure. */
#ifndef LABBOX_NGINXCONF_H
#define LABBOX_NGINXCONF_H

#include <stddef.h>

#include "rc.h"

#define NGINXCONF_NAME_MAX 64 /* bytes of a user or group name, NUL included */

/* nginxconf_user: the arguments of the main context's `user USER [GROUP];` in text (len
 * bytes) into user and group (each NGINXCONF_NAME_MAX bytes; group "" when not given).
 * Comments, quotes, escapes and blocks are tokenized as nginx does; `user` inside a block is
 * not the main context's, and an `include` is not followed. RC_NOTFOUND when there is no such
 * directive (nginx then uses the user it was built with, usually nobody), RC_BADREQ for a
 * malformed file (an unterminated quote, directive or block), a `user` with no or more than
 * two arguments, or a name too long. */
enum rc nginxconf_user(const char *text, size_t len, char user[NGINXCONF_NAME_MAX],
                       char group[NGINXCONF_NAME_MAX]) LB_MUST_CHECK;

#endif
