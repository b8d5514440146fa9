// network: with network = on the agent reaches the outside through slirp4netns but not the
// host's loopback services nor its abstract unix sockets; with it off, nothing (issue 9,
// "network = on shares the host's network namespace"). Wall: sandbox_local_net.c. Run by
// netns.sh in a network namespace of its own: LABBOX_TEST_HOST_ADDR is a non-loopback address
// of that "host" (no traffic leaves the namespace).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { requireTool } from "../integration/harness.mjs";
import { attack, attackerStack, line } from "./hostile.mjs";

const ADDR = process.env.LABBOX_TEST_HOST_ADDR;
requireTool(ADDR, "the test network namespace (run through tests/hostile/netns.sh)");

function listen(host) {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((c) => c.end("HTTP/1.0 200 OK\r\n\r\nhello from the host\n"));
    srv.on("error", reject);
    srv.listen(host.startsWith("\0") ? host : { host, port: 0 }, () => resolve(srv));
  });
}

describe("network", () => {
  let loop, outside, abstract;
  const name = `labbox-test-${process.pid}`;
  before(async () => {
    loop = await listen("127.0.0.1");
    outside = await listen(ADDR);
    abstract = await listen(`\0${name}`);
  });
  after(() => {
    for (const s of [loop, outside, abstract]) s?.close();
  });

  for (const network of ["on", "off"]) {
    test(`network = ${network}: host loopback and abstract sockets out of reach`, async () => {
      const s = await attackerStack({ network });
      try {
        const lp = loop.address().port;
        const r = await attack(s, { attack: "connect", targets: [["127.0.0.1", lp], ["10.0.2.2", lp], [ADDR, outside.address().port]] });
        assert.ok(!r.lines.includes(`connect 127.0.0.1:${lp} ok`), r.lines.join("\n"));
        assert.ok(!r.lines.includes(`connect 10.0.2.2:${lp} ok`), r.lines.join("\n"));
        const reach = line(r.lines, `connect ${ADDR}:`);
        if (network === "on") assert.match(reach || "", / ok$/, `the outside is reachable: ${JSON.stringify(r.job)}\n${r.lines.join("\n")}`);
        else assert.doesNotMatch(reach, / ok$/);
        const a = await attack(s, { attack: "abstract", name });
        assert.ok(line(a.lines, "abstract ") && !a.lines.includes("abstract ok"), a.lines.join("\n"));
        if (network === "on") {
          const h = await attack(s, { attack: "http", url: `http://${ADDR}:${outside.address().port}/` });
          assert.ok(h.lines.includes("http 200 hello from the host"), h.lines.join("\n"));
          const k = await attack(s, { attack: "sockets", families: ["AF_INET", "AF_INET6", "AF_VSOCK"] });
          assert.ok(k.lines.includes("socket AF_INET ok") && k.lines.includes("socket AF_VSOCK EAFNOSUPPORT"), k.lines.join("\n"));
        }
      } finally {
        await s.stop();
      }
    });
  }
});
