/* sandbox_docker: the docker backend's parts (private to sandbox_docker*.c).
 *
 *   sandbox_docker.c        the hooks: the Engine API, containers, logs, usage, collection
 *   sandbox_docker_walls.c  what walls an agent in: the seccomp profile, CPU, /tmp, the
 *                           writable layer's cap, masked /proc files (create parameters)
 */
#ifndef LABBOX_SANDBOX_DOCKER_H
#define LABBOX_SANDBOX_DOCKER_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "rc.h"

#define DOCKER_SECCOMP_MAX (64u << 10) /* the seccomp profile's text, "seccomp=" included */

/* docker_seccomp_profile: the seccomp profile (libseccomp's JSON, as Docker and podman take
 * it) that denies what the local backend's filter denies; NULL on OOM or an architecture
 * without one. The caller owns it. */
json_object *docker_seccomp_profile(bool network);

struct docker_walls_in {
    bool podman;             /* the engine is podman: the profile goes by path, no nr_inodes= */
    bool cap_layer;          /* ask for StorageOpt size= (the writable layer, /workspace's home) */
    const char *profile_dir; /* podman: where the profile's file goes (sandbox_dir) */
};

/* docker_walls: add the walls to a create document's HostConfig hc and its SecurityOpt array
 * (NanoCpus, Tmpfs, MaskedPaths, StorageOpt, the seccomp profile). RC_BACKEND or RC_NOMEM
 * with the reason in err. */
enum rc docker_walls(const struct config *cfg, const struct docker_walls_in *in, json_object *hc,
                     json_object *secopt, char *err, size_t errlen) LB_MUST_CHECK;

#endif
