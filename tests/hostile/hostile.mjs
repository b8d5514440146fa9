// hostile: helpers of the hostile suite: a stack whose agent is the attacker
// (tests/hostile/agent/agent.py), one attack per job, and its report as "key value" lines.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CSV, getJSON, logRecords, startStack, upload, waitFor } from "../integration/harness.mjs";

export const ATTACKER = path.join(path.dirname(fileURLToPath(import.meta.url)), "agent");

// attackerStack: a stack running the attacker agent, with these config keys.
export function attackerStack(config = {}, opts = {}) {
  return startStack({ agentDir: ATTACKER, config, ...opts });
}

// attack: run one attack to its end; {job, lines (stdout), log (all records)}.
export async function attack(stack, params, ms = 120000) {
  const r = await upload(stack, [{ name: "data.csv", data: CSV }], params);
  if (r.status !== 201) throw new Error(`upload answered ${r.status}: ${JSON.stringify(r.body)}`);
  const job = await waitFor(stack, r.body.id, undefined, ms);
  const log = await logRecords(stack, r.body.id);
  const lines = log.filter((x) => x.stream === "stdout").map((x) => x.line);
  return { id: r.body.id, job, lines, log };
}

// line: the report line starting with prefix ("wrote "), or undefined.
export function line(lines, prefix) {
  return lines.find((l) => l.startsWith(prefix));
}

// loopMounts: the loop devices attached to nothing of ours... the count of attached loops
// whose backing file lives under dir (deleted images show "(deleted)").
export function loopsUnder(dir) {
  const r = spawnSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], { encoding: "utf8" });
  return (r.stdout || "").split("\n").filter((l) => l.includes(dir)).length;
}

export { CSV, fs, getJSON, path, upload, waitFor };
