"""listen: the ways `labbox serve` gets its socket, spoken to with FastCGI directly:
fd:0 (spawn-fcgi), systemd socket activation through systemd's own systemd-socket-activate
(LISTEN_PID/LISTEN_FDS, fd 3) with sd_notify readiness on NOTIFY_SOCKET (READY=1, RELOADING=1
on SIGHUP, STOPPING=1 on SIGTERM), and the start-up failures an operator must see: listen =
systemd without a socket, a socket_group that does not exist."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
labbox = os.path.join(os.environ.get("LABBOX_BUILD_DIR", "build"), "labbox")
CI = os.environ.get("CI") == "true"
passed = 0


def base_env(tmp, **extra):
    env = {"PATH": os.environ["PATH"], "LABBOX_DATA_DIR": os.path.join(tmp, "data"),
           "LABBOX_SANDBOX_DIR": os.path.join(tmp, "sb"), "LABBOX_DISK_RESERVE_MB": "0",
           "LABBOX_AGENT_DIR": os.path.join(ROOT, "tests/integration/agents")}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(extra)
    return env


def record(kind, rid, content):
    return bytes([1, kind, rid >> 8, rid & 255, len(content) >> 8, len(content) & 255, 0, 0]) + content


def pair(k, v):
    k, v = k.encode(), v.encode()
    return bytes([len(k), len(v)]) + k + v


def get(path, uri):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(path)
    params = pair("REQUEST_METHOD", "GET") + pair("DOCUMENT_URI", uri) + pair("QUERY_STRING", "")
    c.sendall(record(1, 1, bytes([0, 1, 0, 0, 0, 0, 0, 0])) + record(4, 1, params) + record(4, 1, b"")
              + record(5, 1, b""))
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    c.close()
    out = b""
    while len(data) >= 8:  # stdout records only
        kind, clen, pad = data[1], data[4] << 8 | data[5], data[6]
        if kind == 6:
            out += data[8:8 + clen]
        data = data[8 + clen + pad:]
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode(), body


def get_retry(path, uri, secs=10):
    deadline = time.time() + secs
    while True:
        try:
            return get(path, uri)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


def ok(name):
    global passed
    passed += 1
    print(f"ok - {name}")


def test_fd0(tmp):
    path = os.path.join(tmp, "sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    proc = subprocess.Popen([labbox, "serve"], stdin=srv.fileno(), env=base_env(tmp, LABBOX_LISTEN="fd:0"))
    srv.close()
    try:
        head, body = get_retry(path, "/api/health")
        assert head.startswith("Status: 200"), head
        assert json.loads(body)["status"] == "ok", body
        head, body = get(path, "/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa")
        assert head.startswith("Status: 404"), head
        assert json.loads(body)["code"] == "not_found"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    ok("fd:0 answers FastCGI on a socket handed over as fd 0")


def recv_state(sock, want, secs=10):
    """The next notification datagram; it must contain want."""
    sock.settimeout(secs)
    msg = sock.recv(4096).decode()
    assert want in msg.split("\n"), f"expected {want!r} in {msg!r}"
    return msg


def test_systemd(tmp):
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        if CI:
            raise RuntimeError("systemd-socket-activate (package systemd) is missing, and CI=true")
        print("SKIP: systemd-socket-activate is missing")
        return
    path = os.path.join(tmp, "activated.sock")
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    env = base_env(tmp, LABBOX_LISTEN="systemd", NOTIFY_SOCKET=notify_path)
    args = [tool, "-l", path]
    for k, v in env.items():
        args += ["-E", f"{k}={v}"]
    proc = subprocess.Popen(args + [labbox, "serve"], env={"PATH": os.environ["PATH"]},
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):  # the tool binds the socket, then execs labbox on the first connection
            if os.path.exists(path):
                break
            time.sleep(0.02)
        head, body = get_retry(path, "/api/health")
        assert head.startswith("Status: 200"), head
        msg = recv_state(notify, "READY=1")
        assert any(line.startswith("STATUS=") for line in msg.split("\n")), msg
        ok("listen = systemd serves on fd 3 from systemd-socket-activate and says READY=1")
        st = os.stat(os.path.join(tmp, "data", "running.conf"))
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        with open(os.path.join(tmp, "data", "running.conf")) as f:
            text = f.read()
        assert 'listen = "systemd"' in text and "max_file_bytes = 5242880" in text, text
        ok("serve writes the configuration it runs with to <data_dir>/running.conf, 0600")
        proc.send_signal(signal.SIGHUP)
        msg = recv_state(notify, "RELOADING=1")
        assert any(line.startswith("MONOTONIC_USEC=") for line in msg.split("\n")), msg
        recv_state(notify, "READY=1")
        head, _ = get(path, "/api/health")
        assert head.startswith("Status: 200"), head
        ok("SIGHUP: RELOADING=1, then READY=1, and serve keeps serving")
        proc.send_signal(signal.SIGTERM)
        recv_state(notify, "STOPPING=1")
        assert proc.wait(timeout=15) == 0
        ok("SIGTERM: STOPPING=1 and exit status 0")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        notify.close()


def start_fails(tmp, what, want, **extra):
    r = subprocess.run([labbox, "serve"], env=base_env(tmp, **extra), capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0, f"{what}: serve started"
    assert want in r.stderr, f"{what}: {want!r} not in:\n{r.stderr}"
    ok(f"{what}: the start fails and says why")


def main():
    tmp = tempfile.mkdtemp(prefix="labbox-listen-")
    try:
        test_fd0(tmp)
        test_systemd(tmp)
        start_fails(tmp, "listen = systemd without a socket", "start labbox.socket",
                    LABBOX_LISTEN="systemd")
        start_fails(tmp, "a socket_group that does not exist", "socket_group no-such-group-x: no such group",
                    LABBOX_SOCKET_GROUP="no-such-group-x", LABBOX_LISTEN=os.path.join(tmp, "g.sock"))
        assert not os.path.exists(os.path.join(tmp, "g.sock")), "the failed start left its socket behind"
        start_fails(tmp, "an agent_dir that does not exist", "agent_dir: /nonexistent/agent does not exist",
                    LABBOX_AGENT_DIR="/nonexistent/agent")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"listen: {passed} passed, 0 failed")


main()
