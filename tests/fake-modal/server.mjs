#!/usr/bin/env node
// CLI for the fake Modal backend (see README.md): starts it, prints
// "ADMIN <port>" then "LISTENING <port>" on stdout once ready, runs until
// SIGTERM/SIGINT or until stdin closes when --exit-on-stdin-eof is given.
import { parseArgs } from "node:util";
import { startFakeModal } from "./fake-modal.mjs";

const env = process.env;
const { values } = parseArgs({
  options: {
    host: { type: "string", default: env.FAKE_MODAL_HOST || "127.0.0.1" },
    port: { type: "string", default: env.FAKE_MODAL_PORT || "0" },
    "admin-port": { type: "string", default: env.FAKE_MODAL_ADMIN_PORT || "0" },
    "token-id": { type: "string", default: env.FAKE_MODAL_TOKEN_ID || "ak-test" },
    "token-secret": { type: "string", default: env.FAKE_MODAL_TOKEN_SECRET || "as-test" },
    "state-dir": { type: "string", default: env.FAKE_MODAL_STATE_DIR || "" },
    "image-build-ms": { type: "string", default: env.FAKE_MODAL_IMAGE_BUILD_MS || "300" },
    "schedule-delay-ms": { type: "string", default: env.FAKE_MODAL_SCHEDULE_DELAY_MS || "0" },
    "auth-token-ttl": { type: "string", default: env.FAKE_MODAL_AUTH_TOKEN_TTL || "3600" },
    "router-jwt-ttl": { type: "string", default: env.FAKE_MODAL_ROUTER_JWT_TTL || "3600" },
    "create-delay-ms": { type: "string", default: env.FAKE_MODAL_CREATE_DELAY_MS || "0" },
    "tls-cert": { type: "string", default: env.FAKE_MODAL_TLS_CERT || "" },
    "tls-key": { type: "string", default: env.FAKE_MODAL_TLS_KEY || "" },
    proxy: { type: "boolean", default: !!env.FAKE_MODAL_PROXY },
    "proxy-idle-cut-ms": { type: "string", default: env.FAKE_MODAL_PROXY_IDLE_CUT_MS || "0" },
    "fail-image-tag": { type: "string", multiple: true, default: [] },
    "exit-on-stdin-eof": { type: "boolean", default: false },
    verbose: { type: "boolean", short: "v", default: !!env.FAKE_MODAL_VERBOSE },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  process.stdout.write(`usage: node server.mjs [--port N] [--admin-port N] [--host 127.0.0.1]
  [--token-id ak-test] [--token-secret as-test] [--state-dir DIR]
  [--image-build-ms 300] [--schedule-delay-ms 0] [--auth-token-ttl 3600]
  [--router-jwt-ttl 3600] [--create-delay-ms 0] [--tls-cert PEM --tls-key PEM]
  [--proxy [--proxy-idle-cut-ms N]] [--fail-image-tag TAG]... [--exit-on-stdin-eof] [--verbose]
Prints "ADMIN <port>" and then "LISTENING <port>" (the port clients dial: the proxy's with
--proxy) when ready. See README.md.
`);
  process.exit(0);
}

const num = (s, name) => {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`fake-modal: bad --${name} ${s}\n`);
    process.exit(2);
  }
  return n;
};

const fake = await startFakeModal({
  host: values.host,
  port: num(values.port, "port"),
  adminPort: num(values["admin-port"], "admin-port"),
  tokenId: values["token-id"],
  tokenSecret: values["token-secret"],
  stateDir: values["state-dir"] || undefined,
  imageBuildMs: num(values["image-build-ms"], "image-build-ms"),
  scheduleDelayMs: num(values["schedule-delay-ms"], "schedule-delay-ms"),
  authTokenTtlSecs: num(values["auth-token-ttl"], "auth-token-ttl"),
  routerJwtTtlSecs: num(values["router-jwt-ttl"], "router-jwt-ttl"),
  createDelayMs: num(values["create-delay-ms"], "create-delay-ms"),
  tlsCert: values["tls-cert"] || undefined,
  tlsKey: values["tls-key"] || undefined,
  proxy: values.proxy,
  proxyIdleCutMs: num(values["proxy-idle-cut-ms"], "proxy-idle-cut-ms"),
  failImageTags: values["fail-image-tag"],
  verbose: values.verbose,
});

process.stdout.write(`ADMIN ${fake.adminPort}\nLISTENING ${fake.clientPort}\n`);

let closing = false;
async function shutdown() {
  if (closing) return;
  closing = true;
  try {
    await fake.close();
  } finally {
    process.exit(0);
  }
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
if (values["exit-on-stdin-eof"]) {
  process.stdin.on("end", shutdown);
  process.stdin.resume();
}
