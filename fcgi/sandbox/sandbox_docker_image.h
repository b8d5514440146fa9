/* sandbox_docker_image: the agent's image for the docker backend, private to it.
 *
 * Theory of operation (docs/modal.md#images, the same definition as Modal's). Without a
 * Dockerfile or requirements.txt in the agent dir the container runs docker_image as it is.
 * With one, the image is docker_image (or the Dockerfile's own FROM) with the definition's
 * instructions, built by the engine itself: POST /build with a tar build context holding the
 * Dockerfile labbox writes from the definition and the requirements as ".requirements.txt"
 * (COPY /.requirements.txt, as on Modal). Its tag is labbox-image:<16 hex digits of the
 * definition's hash>: a tag that exists already (GET /images/<tag>/json) is used as it is, so
 * the build runs once per definition. The engine's build output ({"stream": ...} lines) goes into
 * the job's log as "image build: " notes; an {"error": ...} fails the job with the engine's
 * words. Build steps run with the engine's defaults (network included, so that pip can fetch),
 * not under the job's limits; the agent itself then runs in the built image with all of them.
 */
#ifndef LABBOX_SANDBOX_DOCKER_IMAGE_H
#define LABBOX_SANDBOX_DOCKER_IMAGE_H

#include <stddef.h>

#include "rc.h"
#include "rpc/httpc.h"
#include "sandbox/sandbox.h"

/* docker_image_prepare: the image reference the job's container runs into out (cap bytes),
 * building it first when needed, through http with the API prefix api ("/v1.41"). RC_BACKEND
 * with sb->error set on failure. */
enum rc docker_image_prepare(struct sandbox *sb, struct httpc *http, const char *api, char *out,
                             size_t cap) LB_MUST_CHECK;

#endif
