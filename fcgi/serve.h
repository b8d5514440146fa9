/* serve: `labbox serve`, the FastCGI server: listener, request threads, signals, reloads. */
#ifndef LABBOX_SERVE_H
#define LABBOX_SERVE_H

#include "config.h"

/* serve_main runs the server with cfg (adopted: serve keeps it for its lifetime) until SIGTERM
 * or SIGINT; SIGHUP re-reads config_path (NULL = the environment only). It does not return:
 * it exits the process with 0 after a signal, 1 when it could not start. */
__attribute__((noreturn)) void serve_main(struct config *cfg, const char *config_path);

/* serve_open_log points fd 2 at path (appending, created 0640); "" leaves fd 2 alone. */
enum rc serve_open_log(const char *path) LB_MUST_CHECK;

#endif
