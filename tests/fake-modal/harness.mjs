// Test helper: starts tests/fake-modal/server.mjs as a child process, waits for its
// "ADMIN <port>" / "LISTENING <port>" lines, and offers a small admin-API client.
// Usable from any Node test (node:test, integration tests driving the C client).
import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));

/**
 * Start the fake. `args` are extra CLI flags for server.mjs (see README.md).
 * Resolves to { port, adminPort, serverUrl, admin(method, path, body), stop(), child }.
 * Rejects if the server exits or prints nothing usable within `timeoutMs`.
 */
export function startFakeServer({ args = [], timeoutMs = 15000, verbose = !!process.env.FAKE_MODAL_VERBOSE } = {}) {
  const child = spawn(process.execPath, [path.join(HERE, "server.mjs"), ...args, ...(verbose ? ["--verbose"] : [])], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let adminPort = 0;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("fake-modal did not print LISTENING in time"));
    }, timeoutMs);
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`fake-modal exited early (code ${code}, signal ${sig})`));
    });
    const rl = readline.createInterface({ input: child.stdout });
    rl.on("line", (line) => {
      const m = /^(ADMIN|LISTENING) (\d+)$/.exec(line.trim());
      if (!m) return;
      if (m[1] === "ADMIN") {
        adminPort = Number(m[2]);
        return;
      }
      clearTimeout(timer);
      child.removeAllListeners("exit");
      const port = Number(m[2]);
      const admin = async (method, p, body) => {
        const res = await fetch(`http://127.0.0.1:${adminPort}${p}`, {
          method,
          headers: body ? { "content-type": "application/json" } : {},
          body: body ? JSON.stringify(body) : undefined,
        });
        const json = await res.json();
        if (!res.ok) throw new Error(`admin ${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
        return json;
      };
      const stop = () =>
        new Promise((r) => {
          if (child.exitCode !== null || child.signalCode !== null) return r();
          child.once("exit", () => r());
          child.kill("SIGTERM");
          setTimeout(() => child.kill("SIGKILL"), 5000).unref();
        });
      resolve({ port, adminPort, serverUrl: `http://127.0.0.1:${port}`, admin, stop, child });
    });
  });
}
