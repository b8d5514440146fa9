"""Shared by the default agent's tests: paths, the agent on the import path, one agent run."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
AGENT_DIR = os.path.join(ROOT, "scripts", "agent")
AGENT = os.path.join(AGENT_DIR, "agent.py")
EXPERIMENT = os.path.join(ROOT, "tests", "data", "experiment.csv")
sys.path.insert(0, AGENT_DIR)
sys.dont_write_bytecode = True   # no __pycache__ in scripts/agent, which is copied into sandboxes

# R's `sleep` data set; R documents this output of t.test(extra ~ group, data = sleep):
#   Welch Two Sample t-test: t = -1.8608, df = 17.776, p-value = 0.07939,
#   mean in group 1 = 0.75, mean in group 2 = 2.33
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
SLEEP_T, SLEEP_DF, SLEEP_P = -1.8608, 17.776, 0.07939


class Run:
    """One agent run in a temporary /workspace-like directory."""

    def __init__(self, tc, files, params=None, out_sub="outputs"):
        self.dir = tempfile.mkdtemp(prefix="agent-test-")
        tc.addCleanup(shutil.rmtree, self.dir, True)
        inp = os.path.join(self.dir, "inputs")
        os.mkdir(inp)
        for name, content in files.items():
            with open(os.path.join(inp, name), "wb") as f:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
        if params is not None:
            with open(os.path.join(inp, "params.json"), "w") as f:
                f.write(params if isinstance(params, str) else json.dumps(params))
        self.out = os.path.join(self.dir, out_sub)
        env = {"PATH": "/usr/bin:/bin", "LABBOX_JOB_ID": "testjob123", "LABBOX_BACKEND": "local",
               "LABBOX_INPUT_DIR": inp, "LABBOX_OUTPUT_DIR": self.out}
        p = subprocess.run([sys.executable, AGENT], cwd=self.dir, env=env, capture_output=True,
                           text=True, timeout=120)
        self.rc, self.stdout, self.stderr = p.returncode, p.stdout, p.stderr
        self.summary = None
        if os.path.exists(os.path.join(self.out, "summary.json")):
            with open(os.path.join(self.out, "summary.json")) as f:
                self.summary = json.load(f)

    def file(self, name, sheet=None):
        """The summary's entry for a file (for a workbook: for one of its sheets)."""
        return next(f for f in self.summary["files"] if f["name"] == name and f.get("sheet") == sheet)

    def report(self):
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            return f.read()


def col(entry, name):
    return next(c for c in entry["columns"] if c["name"] == name)


def sleep_csv():
    lines = ["id,group,extra"]
    for i, v in enumerate(SLEEP_1):
        lines.append("%d,1,%s" % (i + 1, v))
    for i, v in enumerate(SLEEP_2):
        lines.append("%d,2,%s" % (i + 1, v))
    return "\n".join(lines) + "\n"
