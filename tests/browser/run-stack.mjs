// run-stack: starts two real labbox stacks (tests/integration/harness.mjs: nginx + labbox serve,
// local backend unless LABBOX_TEST_BACKEND says otherwise) with the browser-test agent in
// tests/browser/agent, the second one with the parameter schema of tests/browser/schema beside
// it, then runs frontend.test.mjs and results.test.mjs with LABBOX_TEST_URL and
// LABBOX_TEST_SCHEMA_URL set (and LABBOX_TEST_ACCESS_LOG, the first stack's nginx access log).
// Exit status: the tests'. Usage: node run-stack.mjs [extra node --test args]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack, stopServices } from '../integration/harness.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const config = { max_concurrent: 2, wall_timeout: 120 };
const stack = await startStack({ agentDir: here('./agent'), agentCommand: 'python3 agent.py', config });
const schemaAgent = fs.mkdtempSync(path.join(os.tmpdir(), 'labbox-browser-agent-'));
fs.chmodSync(schemaAgent, 0o755);
fs.copyFileSync(here('./agent/agent.py'), path.join(schemaAgent, 'agent.py'));
fs.copyFileSync(here('./schema/params.schema.json'), path.join(schemaAgent, 'params.schema.json'));
const schemaStack = await startStack({ agentDir: schemaAgent, agentCommand: 'python3 agent.py', config });
let code = 1;
try {
  const tests = [here('./frontend.test.mjs'), here('./results.test.mjs')];
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...process.argv.slice(2), ...tests], {
    stdio: 'inherit',
    env: {
      ...process.env,
      LABBOX_TEST_URL: stack.url,
      LABBOX_TEST_SCHEMA_URL: schemaStack.url,
      LABBOX_TEST_ACCESS_LOG: path.join(stack.dir, 'nginx', 'access.log'),
    },
  });
  code = await new Promise((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
} finally {
  await schemaStack.stop();
  fs.rmSync(schemaAgent, { recursive: true, force: true });
  await stack.stop();
  stopServices();
}
process.exit(code);
