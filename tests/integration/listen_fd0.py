"""listen_fd0: `labbox serve` with listen = fd:0 answers FastCGI on a socket it was handed as
fd 0, the way spawn-fcgi and systemd socket activation start it. Speaks FastCGI directly."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

labbox = os.path.join(os.environ.get("LABBOX_BUILD_DIR", "build"), "labbox")
tmp = tempfile.mkdtemp(prefix="labbox-fd0-")
path = os.path.join(tmp, "sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(16)
env = {"PATH": os.environ["PATH"], "LABBOX_LISTEN": "fd:0", "LABBOX_DATA_DIR": os.path.join(tmp, "data"),
       "LABBOX_SANDBOX_DIR": os.path.join(tmp, "sb"), "LABBOX_DISK_RESERVE_MB": "0"}
for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
    if k in os.environ:
        env[k] = os.environ[k]
proc = subprocess.Popen([labbox, "serve"], stdin=srv.fileno(), env=env)
srv.close()


def record(kind, rid, content):
    return bytes([1, kind, rid >> 8, rid & 255, len(content) >> 8, len(content) & 255, 0, 0]) + content


def pair(k, v):
    k, v = k.encode(), v.encode()
    return bytes([len(k), len(v)]) + k + v


def get(uri):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    out = b""
    while len(data) >= 8:  # stdout records only
        kind, clen, pad = data[1], data[4] << 8 | data[5], data[6]
        if kind == 6:
            out += data[8:8 + clen]
        data = data[8 + clen + pad:]
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode(), body


try:
    deadline = time.time() + 10
    while True:
        try:
            head, body = get("/api/health")
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    assert head.startswith("Status: 200"), head
    assert json.loads(body)["status"] == "ok", body
    head, body = get("/api/jobs/aaaaaaaaaaaaaaaaaaaaaaaaaa")
    assert head.startswith("Status: 404"), head
    assert json.loads(body)["code"] == "not_found"
    print("listen_fd0: 2 passed, 0 failed")
finally:
    proc.terminate()
    proc.wait(timeout=10)
    subprocess.run(["rm", "-rf", tmp])
sys.exit(0)
