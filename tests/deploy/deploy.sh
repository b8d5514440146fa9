#!/usr/bin/env bash
# deploy: install labbox as an operator would and run a job through it, end to end.
#   tests/deploy/deploy.sh          (ctest: deploy_install; LABBOX_BUILD_DIR is the build)
# 1. `cmake --install` into DESTDIR; every file of the documented layout is there.
# 2. A mount namespace overlays DESTDIR's prefix on the real one (nothing on the host changes),
#    so the installed binary finds its compiled-in default agent where it was installed.
# 3. systemd-analyze verify passes on the installed units; the man pages render without
#    warnings; the sysusers.d file makes the labbox user; the .deb has the same files.
# 4. A dedicated user (labbox-test-<random>, removed afterwards) runs the installed labbox with
#    the unit's restrictions emulated (User=, SupplementaryGroups=, NoNewPrivileges=,
#    AmbientCapabilities= and CapabilityBoundingSet= as the unit names them, ProtectSystem=strict
#    with StateDirectory= and RuntimeDirectory=, ProtectHome=, PrivateTmp=, DevicePolicy= and
#    DeviceAllow= as a v1 devices cgroup, ProtectKernelModules=) and the default agent, without
#    allow_unenforced: the job gets its own uid, cgroups and workspace filesystem.
# 5. Two of the failures issue 12 met: a sandbox_dir left owned by root, and socket_group
#    www-data without membership. `labbox doctor` (as the service user, under the emulated
#    unit) reports both with their fixes, and serve refuses to start and says why; after the
#    fixes (chown, `usermod -aG www-data`) doctor passes every check (a trivial sandbox, nginx -t
#    on the rendered snippet) and serve starts.
# 6. The installed render writes the snippet from the config; an nginx of the test's own
#    includes it in its server { } as an operator would, running its workers as www-data.
# 7. A job with tests/data/experiment.csv succeeds; its outputs come through nginx; the server's
#    access log (render --access-log) has the job's requests with <id> for the id.
# Needs root, nginx, bwrap, overlayfs, setpriv, systemd-analyze: a missing one skips (exit 77),
# or fails with CI=true.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${LABBOX_BUILD_DIR:-$src/build}" && pwd)

skip() {
    if [ "${CI:-}" = true ]; then echo "deploy: $1 is missing, and CI=true makes that a failure" >&2; exit 1; fi
    echo "SKIP: $1 is missing"; exit 77
}
[ "$(id -u)" = 0 ] || skip "root (the test creates a user)"
for t in nginx bwrap setpriv unshare useradd userdel usermod curl systemd-analyze systemd-sysusers groff python3 dpkg-deb cpack mkfs.ext4; do
    command -v "$t" >/dev/null || skip "$t"
done
getent group www-data >/dev/null || skip "the www-data group"
[ -d /sys/fs/cgroup/devices ] || skip "a v1 devices cgroup hierarchy (to emulate DevicePolicy=)"

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ -d "$prefix" ] || { echo "deploy: the install prefix $prefix does not exist on this host" >&2; exit 1; }
tmp=$(mktemp -d /tmp/labbox-deploy-XXXXXX)
chmod 0711 "$tmp"
user=labbox-test-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

devcg=/sys/fs/cgroup/devices/$user
cleanup() {
    local rc=$?
    for f in "$tmp"/labbox.pid "$tmp"/nginx-run/nginx.pid; do
        if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
    done
    sleep 0.3
    if [ -d "$devcg" ]; then
        for _ in $(seq 100); do rmdir "$devcg" 2>/dev/null && break; sleep 0.1; done
    fi
    getent passwd "$user" >/dev/null && userdel "$user" 2>/dev/null
    getent group "$user" >/dev/null && groupdel "$user" 2>/dev/null
    if [ $rc != 0 ]; then
        for f in "$tmp"/labbox.log "$tmp"/nginx-run/error.log; do
            [ -f "$f" ] && { echo "--- $f"; tail -40 "$f"; }
        done
    fi
    [ -n "${LABBOX_KEEP_TEST_DIRS:-}" ] || rm -rf "$tmp"
    exit $rc
}
trap cleanup EXIT

# --- 1. the install tree ------------------------------------------------------------------
DESTDIR=$tmp/root cmake --install "$build" >/dev/null
root=$tmp/root$prefix
for f in bin/labbox share/labbox/www/index.html share/labbox/agent/agent.py \
         share/labbox/nginx/locations.conf.template share/labbox/nginx/http.conf.template \
         share/labbox/nginx/fastcgi.conf share/labbox/nginx/README.md share/labbox/nginx/render \
         lib/systemd/system/labbox.service lib/systemd/system/labbox.socket \
         lib/sysusers.d/labbox.conf share/man/man8/labbox.8 share/man/man5/labbox.conf.5 \
         share/doc/labbox/labbox.conf.example share/doc/labbox/operations.md \
         share/doc/labbox/openapi.yaml; do
    [ -e "$root/$f" ] || fail "cmake --install did not install $f"
done
[ -x "$root/share/labbox/nginx/render" ] || fail "render is not executable"
grep -q "^ExecStart=$prefix/bin/labbox serve --config " "$root/lib/systemd/system/labbox.service" ||
    fail "labbox.service does not start $prefix/bin/labbox"
ok "cmake --install honours DESTDIR and installs the documented layout"

# --- 2.-7. inside a private mount namespace -------------------------------------------------
export tmp user prefix root src build devcg
unshare --mount --propagation private bash -euo pipefail -c '
ok() { echo "ok - $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
mount -t overlay overlay -o "lowerdir=$root:$prefix" "$prefix"
[ -x "$prefix/bin/labbox" ] || fail "the overlay does not show the install"

# 3. units, man pages, sysusers, the package
out=$(cd "$prefix/lib/systemd/system" && systemd-analyze verify ./labbox.socket ./labbox.service 2>&1) ||
    fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify complains: $out"
ok "systemd-analyze verify passes on labbox.service and labbox.socket"
for m in man8/labbox.8 man5/labbox.conf.5; do
    w=$(groff -t -man -ww -z "$prefix/share/man/$m" 2>&1)
    [ -z "$w" ] || fail "$m: $w"
done
ok "the installed man pages render without warnings"
mkdir -p "$tmp/sysroot/etc"
: > "$tmp/sysroot/etc/passwd"; : > "$tmp/sysroot/etc/group"
systemd-sysusers --root="$tmp/sysroot" "$prefix/lib/sysusers.d/labbox.conf" 2>/dev/null
grep -q "^labbox:x:[0-9]*:[0-9]*:labbox service:/var/lib/labbox:" "$tmp/sysroot/etc/passwd" ||
    fail "sysusers.d/labbox.conf did not make the labbox user: $(cat "$tmp/sysroot/etc/passwd")"
ok "lib/sysusers.d/labbox.conf makes the labbox user"
out=$(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/deb" 2>&1) || fail "cpack: $out"
deb=$(ls "$tmp"/deb/labbox_*.deb)
dpkg-deb -c "$deb" | awk "{print \$6}" | grep -v "/$" | sed "s|^\./||" | sort > "$tmp/deb.files"
(cd "$tmp/root" && find . -type f -o -type l) | sed "s|^\./||" | sort > "$tmp/install.files"
diff -u "$tmp/install.files" "$tmp/deb.files" || fail "the .deb does not hold the installed files"
postinst=$(dpkg-deb -I "$deb" postinst) || fail "the .deb has no postinst"
case $postinst in *systemd-sysusers*) ;; *) fail "the .deb postinst does not make the user" ;; esac
ok "cpack -G DEB packs the same files, with a postinst"

# 4. the service user and its directories (what StateDirectory= and labbox.socket make)
useradd --system --no-create-home --home-dir "$tmp/state" --shell /usr/sbin/nologin --user-group "$user"
install -d -m 0711 -o "$user" -g "$user" "$tmp/state"
install -d -m 0755 -o "$user" -g "$user" "$tmp/run"
install -d -m 0755 "$tmp/etc"
cat > "$tmp/etc/labbox.conf" <<EOF
# the test operator'"'"'s labbox.conf: relative paths are relative to this file
data_dir = ../state
sandbox_dir = ../state/sandboxes
listen = ../run/labbox.sock
socket_group = www-data
instance = $user
disk_reserve_mb = 0
max_file_bytes = 2M
max_job_bytes = 8M
workspace_max_mb = 64M
EOF
conf=$tmp/etc/labbox.conf
unit=$prefix/lib/systemd/system/labbox.service
# The unit'"'"'s capabilities, as setpriv spells them: the same ambient and bounding.
ambient=$(sed -n "s/^AmbientCapabilities=//p" "$unit")
[ -n "$ambient" ] && [ "$ambient" = "$(sed -n "s/^CapabilityBoundingSet=//p" "$unit")" ] ||
    fail "the unit must name the same capabilities ambient and bounding"
caps=$(for c in $ambient; do c=${c#CAP_}; printf "+%s," "${c,,}"; done)
caps=${caps%,}
grep -q "^SupplementaryGroups=www-data$" "$unit" || fail "the unit does not give labbox the output group"
# DevicePolicy=closed (the pseudo devices) and the unit'"'"'s DeviceAllow= lines, as a devices cgroup.
grep -q "^DevicePolicy=closed$" "$unit" || fail "the unit has no DevicePolicy=closed"
allow=("c 1:3 rw" "c 1:5 rw" "c 1:7 rw" "c 1:8 rw" "c 1:9 rw")
for d in "/dev/loop-control:c 10:237" "block-loop:b 7:*" "/dev/net/tun:c 10:200" "/dev/tty:c 5:0" \
         "/dev/ptmx:c 5:2" "char-pts:c 136:*"; do
    grep -q "^DeviceAllow=${d%%:*} rw$" "$unit" || fail "the unit does not allow ${d%%:*}"
    allow+=("${d#*:} rw")
done
mkdir "$devcg"
echo a > "$devcg/devices.deny"
for rule in "${allow[@]}"; do echo "$rule" > "$devcg/devices.allow"; done
mkdir -p -m 0700 /run/labbox/uid

# run_labbox ARGS: labbox ARGS (serve, doctor) as the service user, with what labbox.service
# imposes emulated in a mount namespace of its own.
run_labbox() {
    local inh=$caps bnd=-all,$caps
    if [ -n "${nocaps:-}" ]; then inh=-all bnd=-all; fi
    exec unshare --mount --propagation private bash -euo pipefail -c "
        # PrivateTmp=yes: fresh /tmp and /var/tmp (the test tree is put back in the new /tmp)
        mount -t tmpfs tmpfs /mnt && mkdir /mnt/keep && mount --bind \"$tmp\" /mnt/keep
        mount -t tmpfs -o mode=1777 tmpfs /tmp && mount -t tmpfs -o mode=1777 tmpfs /var/tmp
        mkdir -p \"$tmp\" && mount --bind /mnt/keep \"$tmp\" && umount -l /mnt
        # ProtectHome=yes
        for d in /home /root /run/user; do
            if [ -d \$d ]; then mount -t tmpfs -o mode=0755 tmpfs \$d; fi
        done
        # DevicePolicy=closed, DeviceAllow=: the devices cgroup made above (the host'"'"'s /dev)
        echo \$\$ > \"$devcg/cgroup.procs\"
        # ProtectKernelModules=yes (not ProtectKernelLogs=: its mount over /proc/kmsg makes the
        # kernel refuse bwrap a fresh /proc, see docs/operations.md)
        if [ -d /usr/lib/modules ]; then mount -t tmpfs -o ro tmpfs /usr/lib/modules; fi
        # ProtectSystem=strict: all read-only but the API file systems (/sys/fs/cgroup stays
        # writable: no ProtectControlGroups=), the state dir (StateDirectory=), /run/labbox/uid
        # (RuntimeDirectory=), the socket dir (as labbox binds its socket) and PrivateTmp='"'"'s
        # /tmp and /var/tmp (systemd keeps those writable under strict)
        for w in \"$tmp/state\" \"$tmp/run\" /run/labbox/uid; do mount --bind \$w \$w; done
        awk \"{print \\\$5}\" /proc/self/mountinfo | sort -u | while read -r mp; do
            case \$mp in
                /proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/tmp|/var/tmp|/run/labbox/uid) continue ;;
                \"$tmp/state\"|\"$tmp/state\"/*|\"$tmp/run\") continue ;;
            esac
            mount -o remount,bind,ro \"\$mp\" 2>/dev/null || true
        done
        findmnt -no OPTIONS -T /usr | grep -qw ro || { echo /usr is not read-only >&2; exit 1; }
        findmnt -no OPTIONS -T \"$tmp/state\" | grep -qw rw || { echo the state dir is read-only >&2; exit 1; }
        # User=, Group=, SupplementaryGroups= (usermod below), NoNewPrivileges=yes,
        # AmbientCapabilities=, CapabilityBoundingSet=
        exec setpriv --reuid=\"$user\" --regid=\"$user\" --init-groups --no-new-privs \
            --inh-caps=\"$inh\" --ambient-caps=\"$inh\" --bounding-set=\"$bnd\" \
            \"$prefix/bin/labbox\" \"\$@\"
    " run_labbox "$@"
}

# 5. a root-owned sandbox_dir (an earlier run as root made it), socket_group without membership
install -d -m 0755 "$tmp/state/sandboxes"
doctor() { run_labbox doctor --config "$conf" --nginx-user www-data; }
if (doctor) > "$tmp/doctor.out" 2>&1; then fail "doctor passed: $(cat "$tmp/doctor.out")"; fi
for want in "^FAIL sandbox_dir  $tmp/state/sandboxes is owned by root, but labbox runs as $user\$" \
            "fix: chown -R $user: $tmp/state/sandboxes\$" \
            "^FAIL socket_group labbox.s user $user is not a member of www-data" \
            "fix: usermod -aG www-data $user " "^2 checks failed\$"; do
    grep -q "$want" "$tmp/doctor.out" || fail "doctor does not say $want: $(cat "$tmp/doctor.out")"
done
ok "labbox doctor reports the root-owned sandbox_dir and the missing group membership, with the fixes"
if (run_labbox serve --config "$conf") > "$tmp/labbox.log" 2>&1; then
    fail "labbox started though $user is not in www-data"
fi
grep -q "socket_group www-data: labbox.s user $user is not a member" "$tmp/labbox.log" ||
    fail "the failed start does not say why: $(cat "$tmp/labbox.log")"
ok "socket_group www-data without membership: the start fails and says why"
chown -R "$user:" "$tmp/state/sandboxes"
usermod -aG www-data "$user"
(doctor) > "$tmp/doctor.out" 2>&1 || fail "doctor after the fixes: $(cat "$tmp/doctor.out")"
for want in "^ok   sandbox_dir " "^ok   sandbox      a trivial sandbox ran" "^ok   socket " \
            "^ok   nginx -t     " "^0 checks failed\$"; do
    grep -q "$want" "$tmp/doctor.out" || fail "doctor after the fixes does not say $want: $(cat "$tmp/doctor.out")"
done
ok "after the fixes labbox doctor passes every check, a trivial sandbox and nginx -t included"
# doctor as the service user but without the capabilities of the unit (runuser): the backend check
# fails, and its fix says how to run doctor as the unit runs labbox
(nocaps=1 doctor) > "$tmp/doctor.out" 2>&1 && fail "doctor passed without capabilities: $(cat "$tmp/doctor.out")"
for want in "^FAIL backend      local: cannot enforce memory (labbox lacks CAP_" \
            "fix: doctor lacks the capabilities labbox.service gives labbox: .*systemd-run --pipe --wait --collect -p User=$user -p SupplementaryGroups=www-data -p AmbientCapabilities=\"CAP_[A-Z_ ]*\" labbox doctor"; do
    grep -q "$want" "$tmp/doctor.out" || fail "doctor without capabilities does not say $want: $(cat "$tmp/doctor.out")"
done
ok "without the capabilities of the unit, the backend check of doctor says how to run it with them"
run_labbox serve --config "$conf" > "$tmp/labbox.log" 2>&1 &
echo $! > "$tmp/labbox.pid"
for _ in $(seq 200); do [ -S "$tmp/run/labbox.sock" ] && break; sleep 0.05; done
[ -S "$tmp/run/labbox.sock" ] || fail "labbox did not listen"
[ "$(stat -c %G:%a "$tmp/run/labbox.sock")" = www-data:660 ] || fail "socket: $(stat -c %G:%a "$tmp/run/labbox.sock")"
pgrep -u "$user" -x labbox >/dev/null || fail "labbox does not run as $user"
ok "labbox serve runs as $user under the emulated unit, socket www-data 0660"

# 6. the operator'"'"'s nginx: the rendered snippet in their own server { }
# (the server'"'"'s access log is the operator'"'"'s own: render is told its path)
"$prefix/share/labbox/nginx/render" --config "$conf" --labbox "$prefix/bin/labbox" \
    --upload-rate 100r/s --access-log "$tmp/nginx-run/access.log" "$tmp/nginx" > /dev/null
grep -q "fastcgi_pass unix:$tmp/run/labbox.sock;" "$tmp/nginx/locations.conf" || fail "render: socket"
grep -q "client_max_body_size 9437184;" "$tmp/nginx/locations.conf" || fail "render: max body"
grep -q "alias $tmp/state/jobs/;" "$tmp/nginx/locations.conf" || fail "render: data dir"
grep -q "access_log $tmp/nginx-run/access.log labbox;" "$tmp/nginx/locations.conf" || fail "render: access log"
port=$(python3 -c "import socket; s=socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])")
mkdir -p "$tmp/nginx-run"
cat > "$tmp/nginx-run/nginx.conf" <<EOF
user www-data www-data;
worker_processes 1;
pid $tmp/nginx-run/nginx.pid;
error_log $tmp/nginx-run/error.log warn;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log $tmp/nginx-run/access.log;
    client_body_temp_path $tmp/nginx-run/body;
    fastcgi_temp_path $tmp/nginx-run/fastcgi;
    include $tmp/nginx/http.conf;
    server {
        listen 127.0.0.1:$port;
        server_name lab.example.org;
        include $tmp/nginx/locations.conf;
    }
}
EOF
nginx -t -q -c "$tmp/nginx-run/nginx.conf" -e "$tmp/nginx-run/error.log" || fail "nginx -t"
nginx -c "$tmp/nginx-run/nginx.conf" -e "$tmp/nginx-run/error.log"
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$url/api/health" >/dev/null && break; sleep 0.05; done
health=$(curl -sf "$url/api/health") || fail "no /api/health through nginx"
case $health in *"\"backend_ok\":true"*) ;; *) fail "health: $health" ;; esac
page=$(curl -sf "$url/") || fail "GET / through nginx failed"
case $page in *"<html"*|*"<HTML"*) ;; *) fail "the frontend is not served" ;; esac
ok "the rendered snippet in an operator'"'"'s server { }: frontend and API through nginx"

# 7. a job end to end with the installed default agent
resp=$(curl -s -F "files=@$src/tests/data/experiment.csv" "$url/api/jobs")
id=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])[\"id\"])" "$resp") || fail "upload: $resp"
state=""
for _ in $(seq 600); do
    state=$(curl -sf "$url/api/jobs/$id" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"state\"])")
    case $state in succeeded|failed|timed_out|canceled) break ;; esac
    sleep 0.1
done
[ "$state" = succeeded ] || fail "job $id ended $state: $(curl -s "$url/api/jobs/$id"; curl -s "$url/api/jobs/$id/logs")"
outs=$(curl -sf "$url/api/jobs/$id/outputs")
first=$(python3 -c "import json,sys; o=json.loads(sys.argv[1])[\"outputs\"]; print(o[0][\"url\"] if o else \"\")" "$outs")
[ -n "$first" ] || fail "no outputs: $outs"
code=$(curl -s -o "$tmp/out.bin" -w "%{http_code}" "$url$first")
[ "$code" = 200 ] && [ -s "$tmp/out.bin" ] || fail "output $first through nginx: HTTP $code"
walls=$(grep "job=$id .*sandbox runs as uid" "$tmp/labbox.log") || fail "no walls line for $id in the log"
case $walls in
    *"uid 18790"*"cgroup limits: memory pids cpus, workspace: a filesystem of its own"*) ;;
    *) fail "the job ran without every wall: $walls" ;;
esac
ok "a job with the installed default agent succeeds as $user, with its own uid, cgroups and workspace; its outputs come through nginx ($first)"
# The operator'"'"'s access log (combined, at the http level) got labbox'"'"'s requests in labbox'"'"'s
# format only: the id written <id>.
grep -q "\"GET /api/jobs/<id>/outputs " "$tmp/nginx-run/access.log" || fail "no <id> in the access log: $(cat "$tmp/nginx-run/access.log")"
if grep -q "$id" "$tmp/nginx-run/access.log"; then fail "the access log holds the job id: $(grep "$id" "$tmp/nginx-run/access.log")"; fi
ok "the access log of the operator'"'"'s server writes the job id as <id>"
kill "$(cat "$tmp/labbox.pid")"
wait "$(cat "$tmp/labbox.pid")" || fail "labbox did not stop cleanly: $(tail -5 "$tmp/labbox.log")"
kill "$(cat "$tmp/nginx-run/nginx.pid")"
rm -f "$tmp/labbox.pid"
ok "SIGTERM stops labbox with status 0"
'
echo "deploy: all passed"
