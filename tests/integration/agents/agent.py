"""Test agent for labbox's integration tests: does what params.json "mode" asks.

Runs in the sandbox like any operator's agent; only the standard library. Modes:
  ok (default)   print lines, write nested text and binary outputs, exit 0
  slow           after "delay" seconds (default 0), print "tick N" every "interval" (0.2) s
                 for "seconds" seconds, then write outputs, exit 0 ("early_output": write
                 outputs/early.txt first)
  exit           print then exit with "code"
  sleep          print "sleeping" then sleep "seconds"
  hostile        write a symlink, a FIFO, a hard link to an input, a "../" symlink trick,
                 plus one good file
  flood          print "lines" lines of "width" characters as fast as it can
  long-line      print "before", a line of "chars" characters chr("char") (default 16000
                 times chr(1)), then "after"
  big-output     write "bytes" bytes into outputs/big.bin
  env            print the environment, one NAME=value per line
  kill-self      kill itself with signal "signal"
  partial        print a line without a newline, wait, then finish it
  memory         allocate "mb" MiB
  write          write outputs: "files" {path: text}, "b64" {path: base64 bytes}
  tree           print "input <relative path> <bytes>" for every file under inputs/
  fds            print the open file descriptors and what they are
  cat            print the lines of the file "path"
  run            run the command "argv" and print its exit status
  syscalls       try a few system calls the sandbox denies; print "<name> errno <n>" each
  net            try a TCP connection to "host":"port"; print "connected" or "refused: ..."
"""
import json
import os
import signal
import sys
import time

inp = os.environ.get("LABBOX_INPUT_DIR", "/workspace/inputs")
out = os.environ.get("LABBOX_OUTPUT_DIR", "/workspace/outputs")
os.makedirs(out, exist_ok=True)
try:
    with open(os.path.join(inp, "params.json")) as f:
        P = json.load(f)
except FileNotFoundError:
    P = {}
mode = P.get("mode", "ok")
print(f"test agent mode={mode} backend={os.environ.get('LABBOX_BACKEND')} job={os.environ.get('LABBOX_JOB_ID')}", flush=True)


def outputs():
    os.makedirs(os.path.join(out, "nested/deeper"), exist_ok=True)
    with open(os.path.join(out, "result.txt"), "w") as f:
        f.write("inputs: " + ",".join(sorted(os.listdir(inp))) + "\n")
    with open(os.path.join(out, "nested/deeper/data.bin"), "wb") as f:
        f.write(bytes(range(256)) * 4)
    with open(os.path.join(out, "nested/note.md"), "w") as f:
        f.write("# note\n")


if mode == "ok":
    for i in range(int(P.get("lines", 3))):
        print(f"line {i}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    outputs()
elif mode == "slow":
    if P.get("early_output"):  # something to collect when the job is stopped mid-way
        with open(os.path.join(out, "early.txt"), "w") as f:
            f.write("written before the ticks\n")
    time.sleep(float(P.get("delay", 0)))
    end = time.time() + float(P.get("seconds", 2))
    i = 0
    while time.time() < end:
        print(f"tick {i}", flush=True)
        i += 1
        time.sleep(float(P.get("interval", 0.2)))
    outputs()
elif mode == "exit":
    print("about to fail", flush=True)
    print("something went wrong", file=sys.stderr, flush=True)
    sys.exit(int(P.get("code", 3)))
elif mode == "sleep":
    print("sleeping", flush=True)
    time.sleep(float(P.get("seconds", 60)))
elif mode == "hostile":
    with open(os.path.join(out, "good.txt"), "w") as f:
        f.write("good\n")
    os.symlink("/etc/passwd", os.path.join(out, "passwd-link"))
    os.symlink("..", os.path.join(out, "up"))
    os.mkfifo(os.path.join(out, "fifo"))
    first = sorted(os.listdir(inp))[0]
    try:
        os.link(os.path.join(inp, first), os.path.join(out, "hardlink"))
    except OSError as e:
        print(f"hard link refused: {e.strerror}", flush=True)
    with open(os.path.join(out, "twin-a"), "w") as f:
        f.write("twin\n")
    os.link(os.path.join(out, "twin-a"), os.path.join(out, "twin-b"))
    print("hostile outputs written", flush=True)
elif mode == "flood":
    line = "x" * int(P.get("width", 100))
    for i in range(int(P.get("lines", 100000))):
        sys.stdout.write(f"{i} {line}\n")
    sys.stdout.flush()
elif mode == "long-line":
    print("before", flush=True)
    print(chr(int(P.get("char", 1))) * int(P.get("chars", 16000)), flush=True)
    print("after", flush=True)
elif mode == "big-output":
    with open(os.path.join(out, "big.bin"), "wb") as f:
        f.write(b"\0" * int(P.get("bytes", 1 << 20)))
elif mode == "env":
    for k in sorted(os.environ):
        print(f"{k}={os.environ[k]}", flush=True)
elif mode == "kill-self":
    print("goodbye", flush=True)
    os.kill(os.getpid(), int(P.get("signal", signal.SIGSEGV)))
elif mode == "partial":
    sys.stdout.write("partial line")
    sys.stdout.flush()
    time.sleep(float(P.get("seconds", 1)))
    sys.stdout.write(" finished\n")
    sys.stdout.flush()
elif mode == "fds":
    for fd in sorted(int(x) for x in os.listdir("/proc/self/fd")):
        try:
            print(f"fd {fd} -> {os.readlink(f'/proc/self/fd/{fd}')}", flush=True)
        except OSError:
            pass
elif mode == "cat":
    with open(P["path"]) as f:
        for line in f:
            print(line.rstrip("\n"), flush=True)
elif mode == "run":
    import subprocess
    r = subprocess.run(P["argv"], capture_output=True, text=True)
    print(f"status {r.returncode}: {r.stderr.strip()}", flush=True)
elif mode == "syscalls":
    import ctypes
    import platform
    nrs = {"x86_64": {"keyctl": 250, "bpf": 321, "io_uring_setup": 425, "ptrace": 101},
           "aarch64": {"keyctl": 219, "bpf": 280, "io_uring_setup": 425, "ptrace": 117}}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    for name, nr in nrs.items():
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
        print(f"{name} errno {ctypes.get_errno() if r == -1 else 0}", flush=True)
    print(f"getpid ok {os.getpid() > 0}", flush=True)
elif mode == "net":
    import socket
    try:
        socket.create_connection((P.get("host", "127.0.0.1"), int(P["port"])), timeout=3).close()
        print("connected", flush=True)
    except OSError as e:
        print(f"refused: {e}", flush=True)
elif mode == "write":
    import base64
    for rel, text in P.get("files", {}).items():
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        with open(os.path.join(out, rel), "w", encoding="utf-8") as f:
            f.write(text)
    for rel, b64 in P.get("b64", {}).items():
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        with open(os.path.join(out, rel), "wb") as f:
            f.write(base64.b64decode(b64))
    print("wrote " + ", ".join(sorted(list(P.get("files", {})) + list(P.get("b64", {})))), flush=True)
elif mode == "tree":
    for root, dirs, files in os.walk(inp):
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), inp)
            with open(os.path.join(root, name), "rb") as f:
                print(f"input {rel} {len(f.read())}", flush=True)
elif mode == "memory":
    blocks = []
    for _ in range(int(P.get("mb", 2048))):
        blocks.append(bytearray(1 << 20))
    print("allocated", flush=True)
print("done", flush=True)
