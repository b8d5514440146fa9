"""Benchmark agent for scripts/bench (streams, latency): prints timestamped lines.

Standard library only; runs in the sandbox like any operator's agent. params.json "mode":
  lines   print "clock <realtime_ns> <monotonic_ns>", wait "delay_s" seconds (so the readers
          attach), then print "lines" lines "bench <i> <monotonic_ns> <realtime_ns>" every
          "interval_ms" ms on an absolute schedule (no drift), each stamped as it is printed
"""
import json
import os
import sys
import time

inp = os.environ.get("LABBOX_INPUT_DIR", "/workspace/inputs")
try:
    with open(os.path.join(inp, "params.json")) as f:
        P = json.load(f)
except FileNotFoundError:
    P = {}
mode = P.get("mode", "lines")


def stamp():
    # Both clocks read back to back; monotonic last, as close to the write as possible.
    rt = time.time_ns()
    mono = time.monotonic_ns()
    return mono, rt


if mode == "lines":
    mono, rt = stamp()
    print(f"clock {rt} {mono}", flush=True)
    time.sleep(float(P.get("delay_s", 1.0)))
    n = int(P.get("lines", 200))
    step = int(float(P.get("interval_ms", 20)) * 1e6)
    start = time.monotonic_ns()
    out = sys.stdout
    for i in range(n):
        due = start + i * step
        left = due - time.monotonic_ns()
        if left > 0:
            time.sleep(left / 1e9)
        mono, rt = stamp()
        out.write(f"bench {i} {mono} {rt}\n")
        out.flush()
    print("done", flush=True)
else:
    print(f"unknown mode {mode}", file=sys.stderr, flush=True)
    sys.exit(2)
