// hostile: helpers of the hostile suite: a stack whose agent is the attacker
// (tests/hostile/agent/agent.py), one attack per job, and its report as "key value" lines.
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CSV, getJSON, killSupervisor, logRecords, startStack, supervisorPids, upload, waitFor, workAlias } from "../integration/harness.mjs";

export const ATTACKER = path.join(path.dirname(fileURLToPath(import.meta.url)), "agent");

// attackerStack: a stack running the attacker agent, with these config keys.
export function attackerStack(config = {}, opts = {}) {
  return startStack({ agentDir: ATTACKER, config, ...opts });
}

// The capabilities labbox.service grants (scripts/systemd/labbox.service.in, in setpriv's names).
export const UNIT_CAPS = ["sys_admin", "setuid", "setgid", "chown", "dac_override", "kill"];

// serviceUser: a system user of the test's own (removed by remove()), as labbox's service user;
// groups: supplementary groups (the output group).
export function serviceUser(groups = []) {
  const name = `labbox-hostile-${crypto.randomBytes(4).toString("hex")}`;
  const r = spawnSync("useradd", ["--system", "--no-create-home", "--home-dir", "/nonexistent",
    "--shell", "/usr/sbin/nologin", "--user-group", ...(groups.length ? ["--groups", groups.join(",")] : []), name],
  { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`useradd: ${r.stderr}`);
  return { name, remove: () => { spawnSync("userdel", [name]); spawnSync("groupdel", [name]); } };
}

// asUser: run argv as user (an unprivileged host user: nobody, www-data) with input on its
// stdin and env added to the environment; {status, stdout, stderr}.
export function asUser(user, argv, input = "", env = {}) {
  const gid = spawnSync("id", ["-g", user], { encoding: "utf8" }).stdout.trim();
  return spawnSync("setpriv", [`--reuid=${user}`, `--regid=${gid}`, "--init-groups", "--inh-caps=-all",
    "--bounding-set=-all", ...argv], { encoding: "utf8", input, env: { ...process.env, ...env } });
}

// threadCaps: [name, CapPrm, CapEff] of every thread of process pid.
export function threadCaps(pid) {
  return fs.readdirSync(`/proc/${pid}/task`).map((t) => {
    const st = fs.readFileSync(`/proc/${pid}/task/${t}/status`, "utf8");
    const get = (k) => (st.match(new RegExp(`^${k}:\\s*(\\S+)`, "m")) || [])[1];
    return [t, get("CapPrm"), get("CapEff")];
  });
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

export { CSV, fs, getJSON, killSupervisor, path, supervisorPids, upload, waitFor, workAlias };
