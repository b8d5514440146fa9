// run-stack: starts a real labbox stack (tests/integration/harness.mjs: nginx + labbox serve, local
// backend unless LABBOX_TEST_BACKEND says otherwise) with the browser-test agent in
// tests/browser/agent, then runs frontend.test.mjs against it with LABBOX_TEST_URL set.
// Exit status: the test's. Usage: node run-stack.mjs [extra node --test args]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startStack, stopServices } from '../integration/harness.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const stack = await startStack({
  agentDir: here('./agent'),
  agentCommand: 'python3 agent.py',
  config: { max_concurrent: 2, wall_timeout: 120 },
});
let code = 1;
try {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...process.argv.slice(2), here('./frontend.test.mjs')], {
    stdio: 'inherit',
    env: { ...process.env, LABBOX_TEST_URL: stack.url },
  });
  code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
} finally {
  await stack.stop();
  stopServices();
}
process.exit(code);
