#!/usr/bin/env bash
# Installs the host-architecture .deb on THIS machine and uses it as a
# newcomer would, with the service started the way systemd would start it:
#   scripts/deb-install-test.sh --yes-install-on-this-machine   (or CI=1)
#
# It runs dpkg -i / -r / --purge, so it writes to /usr/bin, /etc/engine-auth,
# /lib/systemd/system, /etc/systemd/system and /var/lib/{private/,}engine-auth.
# Run it on a throwaway machine or container only, as root. It refuses to run
# if engine-auth is installed or its state/config directories exist.
#
#   0. scripts/build-release.sh TARGET, scripts/package-deb.sh TARGET
#   1. dpkg -i: binary, conffile, admin-password (0600, 24 chars), the five
#      units, enabled (wants symlinks) although systemd is not running.
#   2. The service, simulated without systemd as PID 1, from the installed
#      unit file: StateDirectory= with DynamicUser= layout
#      (/var/lib/private/NAME, symlink /var/lib/NAME, a tmpfs over
#      /var/lib/private in the service's mount namespace), unprivileged user
#      (nobody), UMask=, Environment=, LoadCredential= ($CREDENTIALS_DIRECTORY),
#      $NOTIFY_SOCKET (Type=notify: READY=1 from the main PID) and
#      $WATCHDOG_USEC. ExecStartPre (expect "no store yet"), ExecStart, /health,
#      admin login with /etc/engine-auth/admin-password, create a user, SIGHUP
#      (ExecReload: key rotation, RELOADING=1/READY=1, old token valid), SIGTERM
#      (clean exit within TimeoutStopSec=), ExecStartPre ("left as it is"),
#      ExecStart, both log in. The backup unit's ExecStart beside the running
#      daemon (through its admin socket) and beside the stopped one: a file
#      in backups/, mode 0600, the service user's.
#   3. dpkg -i again (an upgrade) keeps admin-password and the store; dpkg -r
#      keeps the store, config and admin-password; dpkg --purge removes them
#      and the enablement and mask symlinks.
# Not simulated: the sandbox (ProtectSystem=, SystemCallFilter=, PrivateUsers=
# ...), a real dynamic UID, WATCHDOG=1 pings (every 15 s, longer than the
# test), Restart=, the rotate and backup timers. The static binary is built for the
# host's release target: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl
# or armv7-unknown-linux-gnueabihf.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  --yes-install-on-this-machine) ;;
  -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *)
    if [ "${CI:-}" != 1 ]; then
      cat >&2 <<'EOF'
scripts/deb-install-test.sh installs the engine-auth .deb on THIS machine
(dpkg -i into /usr/bin, /etc/engine-auth, /lib/systemd/system, enables the unit
under /etc/systemd/system), runs the daemon from it, then removes and purges it
(deleting /var/lib/engine-auth and /etc/engine-auth). Use a throwaway machine or
container, as root, and confirm with:
  scripts/deb-install-test.sh --yes-install-on-this-machine     (or CI=1)
EOF
      exit 2
    fi ;;
esac

t_start=$SECONDS
die() { echo "deb-install-test: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (it runs dpkg -i)"
for tool in dpkg dpkg-deb curl setpriv unshare mount readelf ss; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
case "$(uname -m)" in
  x86_64) target=x86_64-unknown-linux-musl ;;
  aarch64) target=aarch64-unknown-linux-musl ;;
  armv7l) target=armv7-unknown-linux-gnueabihf ;;
  *) die "no release target for host architecture $(uname -m)" ;;
esac
if dpkg-query -W -f='${Status}' engine-auth 2>/dev/null | grep -qv 'not-installed'; then
  die "engine-auth is installed here (dpkg -l engine-auth); this test would purge it and its data"
fi
for p in /etc/engine-auth /var/lib/engine-auth /var/lib/private/engine-auth; do
  { [ -e "$p" ] || [ -L "$p" ]; } && die "$p exists; this test would delete it"
done

svc_user=nobody svc_group=nogroup
unit=/lib/systemd/system/engine-auth.service
tmp=$(mktemp -d /tmp/deb-install-test.XXXXXX)
chmod 0711 "$tmp"   # the service user reaches its credentials below it
log=$tmp/daemon.log
notify_log=$tmp/notify.log
pid='' listener='' installed=0 created_state=0
cleanup() {
  local rc=$?
  set +e
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$listener" ] && kill "$listener" 2>/dev/null
  wait 2>/dev/null
  if [ "$installed" = 1 ] && dpkg-query -W -f='${Status}' engine-auth 2>/dev/null | grep -qv 'not-installed'; then
    dpkg --purge engine-auth >/dev/null 2>&1 || echo "cleanup: dpkg --purge engine-auth failed" >&2
  fi
  if [ "$created_state" = 1 ]; then
    rm -rf /var/lib/private/engine-auth /var/lib/engine-auth
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Per-step bookkeeping: ok/bad print a line each; end_step prints PASS/FAIL.
failed_steps=() step_failed=0 step_name=
begin_step() { step_name=$1; step_failed=0; printf '\n== %s\n' "$step_name"; }
ok() { printf '   ok      %s\n' "$*"; }
bad() { printf '   NOT OK  %s\n' "$*"; step_failed=1; }
check() { # description command...
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
end_step() {
  if [ "$step_failed" = 0 ]; then echo "PASS $step_name"
  else echo "FAIL $step_name"; failed_steps+=("$step_name"); fi
}
quiet() { "$@" >/dev/null; }
not() { ! "$@"; }
show_log() { echo "   --- daemon log (last 30 lines)"; tail -n 30 "$log" 2>/dev/null | sed 's/^/   | /'; }

# ---------------------------------------------------------------- step 0
begin_step "0 build and package ($target)"
if scripts/build-release.sh "$target" >"$tmp/build.log" 2>&1; then
  ok "scripts/build-release.sh $target: $(tail -n 1 "$tmp/build.log")"
else
  tail -n 30 "$tmp/build.log"; bad "scripts/build-release.sh $target"
fi
deb=
if [ "$step_failed" = 0 ] && scripts/package-deb.sh "$target" >"$tmp/package.log" 2>&1; then
  deb=$(grep -o '[^ ]*\.deb$' "$tmp/package.log" | tail -n 1)
  check "scripts/package-deb.sh $target -> $deb" test -f "$deb"
  debarch=$(dpkg-deb -f "$deb" Architecture)
  check "package architecture $debarch is the host's ($(dpkg --print-architecture))" \
    test "$debarch" = "$(dpkg --print-architecture)"
elif [ "$step_failed" = 0 ]; then
  tail -n 30 "$tmp/package.log"; bad "scripts/package-deb.sh $target"
fi
end_step
[ "$step_failed" = 0 ] || { echo "FAIL (no package to test)"; exit 1; }

# ---------------------------------------------------------------- step 1
begin_step "1 dpkg -i"
installed=1
if dpkg -i "$deb" >"$tmp/dpkg-i.log" 2>&1; then
  ok "dpkg -i $deb exits 0"
else
  sed 's/^/   | /' "$tmp/dpkg-i.log"; bad "dpkg -i $deb exits 0"
fi
check "postinst names the password file" grep -q 'is in /etc/engine-auth/admin-password' "$tmp/dpkg-i.log"
check "/usr/bin/engine-auth is executable" test -x /usr/bin/engine-auth
check "/usr/bin/engine-auth is static (no INTERP)" \
  sh -c '! readelf -lW /usr/bin/engine-auth | grep -q INTERP'
check "/usr/bin/engine-auth --version runs" sh -c '/usr/bin/engine-auth --version >/dev/null'
check "/etc/engine-auth/config.toml exists" test -f /etc/engine-auth/config.toml
check "config.toml is a registered conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' engine-auth | grep -q '^ */etc/engine-auth/config.toml '"
pwfile=/etc/engine-auth/admin-password
if [ -f "$pwfile" ]; then
  check "admin-password is mode 600 root:root ($(stat -c '%a %U:%G' "$pwfile"))" \
    test "$(stat -c '%a %U:%G' "$pwfile")" = "600 root:root"
  check "admin-password is 24 letters/digits" grep -Eqx '[A-Za-z0-9]{24}' "$pwfile"
else
  bad "$pwfile exists"
fi
for u in engine-auth.service engine-auth-rotate.service engine-auth-rotate.timer \
         engine-auth-backup.service engine-auth-backup.timer; do
  check "/lib/systemd/system/$u exists" test -f "/lib/systemd/system/$u"
done
for w in multi-user.target.wants/engine-auth.service timers.target.wants/engine-auth-rotate.timer \
         timers.target.wants/engine-auth-backup.timer; do
  l=/etc/systemd/system/$w
  check "enabled: $l -> $(readlink "$l" 2>/dev/null || echo '(missing)')" \
    sh -c "[ -L '$l' ] && [ -f \"\$(readlink -f '$l')\" ]"
done
all_enabled() { [ "$(systemctl is-enabled "$@" 2>/dev/null | sort -u)" = enabled ]; }
check "systemctl is-enabled (offline) says enabled" all_enabled engine-auth.service engine-auth-rotate.timer engine-auth-backup.timer
packaged_daemon_runs() {
  local p
  for p in $(pgrep -x engine-auth); do
    [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/bin/engine-auth ] && return 0
  done
  return 1
}
check "nothing was started (no systemd running)" not packaged_daemon_runs
end_step
[ "$step_failed" = 0 ] || { echo "FAIL (package not installed as expected; skipping the rest)"; exit 1; }

# ---------------------------------------------------------------- step 2
begin_step "2 service start as systemd would (ExecStartPre, ExecStart, restart)"
unit_value() { sed -n "s/^$1=//p" "$unit"; }    # every value of KEY in [Service]
pre_line=$(unit_value ExecStartPre | head -n 1)
start_line=$(unit_value ExecStart | head -n 1)
read -r -a pre_cmd <<<"${pre_line#-}"            # '-': failure ignored by systemd
read -r -a start_cmd <<<"$start_line"
state_name=$(unit_value StateDirectory | head -n 1)
state_mode=$(unit_value StateDirectoryMode | head -n 1)
umask_value=$(unit_value UMask | head -n 1)
cred=$(unit_value LoadCredential | head -n 1)    # NAME:PATH
stop_timeout=$(unit_value TimeoutStopSec | head -n 1); stop_timeout=${stop_timeout%s}
start_timeout=$(unit_value TimeoutStartSec | head -n 1); start_timeout=${start_timeout%s}
watchdog=$(unit_value WatchdogSec | head -n 1); watchdog=${watchdog%s}
nofile=$(unit_value LimitNOFILE | head -n 1)
unit_env=()
while read -r -a words; do unit_env+=("${words[@]}"); done < <(unit_value Environment)
ok "ExecStartPre: ${pre_cmd[*]}"
ok "ExecStart:    ${start_cmd[*]}"
ok "StateDirectory=$state_name ($state_mode), UMask=$umask_value, LoadCredential=$cred, Environment=${unit_env[*]}"
[ "$(unit_value DynamicUser)" = yes ] || bad "the unit no longer says DynamicUser=yes: this simulation assumes it"

# The listen address and data dir the config file names.
conf=/etc/engine-auth/config.toml
listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$conf")
data_dir=$(sed -n 's/^data_dir *= *"\(.*\)"/\1/p' "$conf")
port=${listen##*:}
host=${listen%:*}
case "$host" in 0.0.0.0|'[::]'|'') host=127.0.0.1 ;; esac
base="http://$host:$port"
ok "config: listen=$listen data_dir=${data_dir:-(unset: \$STATE_DIRECTORY)} -> $base"
[ -z "$data_dir" ] || [ "$data_dir" = "/var/lib/$state_name" ] \
  || bad "config data_dir=$data_dir is not the unit's StateDirectory /var/lib/$state_name"
if ss -Hltn "sport = :$port" | grep -q .; then
  bad "port $port is already in use on this machine"; end_step; exit 1
fi

# StateDirectory= with DynamicUser=: the real directory is
# /var/lib/private/NAME (owned by the service user), /var/lib/NAME a symlink.
created_state=1
install -d -m 0700 /var/lib/private
install -d -m "${state_mode:-0755}" -o "$svc_user" -g "$svc_group" "/var/lib/private/$state_name"
ln -s "private/$state_name" "/var/lib/$state_name"
# LoadCredential=NAME:PATH: a copy readable by the service user only.
cred_dir=$tmp/credentials/engine-auth.service
install -d -m 0711 "$tmp/credentials"
install -d -m 0500 -o "$svc_user" -g "$svc_group" "$cred_dir"
install -m 0400 -o "$svc_user" -g "$svc_group" "${cred#*:}" "$cred_dir/${cred%%:*}"
install -d -m 0700 "$tmp/statebind"

# $NOTIFY_SOCKET: an abstract datagram socket; each message is logged with
# the sender's PID (NotifyAccess=main accepts only the main PID's).
notify_name="engine-auth-deb-test-$$"
if py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null); then
  "$py" - "$notify_name" "$notify_log" <<'EOF' &
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
with open(sys.argv[2], "a", buffering=1) as f:
    f.write("0 LISTENING\n")
    while True:
        msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", data[:12])[0]
        f.write("%d %s\n" % (pid, msg.decode(errors="replace").replace("\n", " ")))
EOF
  listener=$!
  for _ in $(seq 50); do grep -q LISTENING "$notify_log" 2>/dev/null && break; sleep 0.1; done
else
  ok "(python3 missing: \$NOTIFY_SOCKET not simulated)"
fi

# Runs a command line from the unit as systemd would: clean environment,
# Environment=, $STATE_DIRECTORY, $CREDENTIALS_DIRECTORY, a mount namespace in
# which /var/lib/private is a tmpfs holding only this unit's directory, UMask=,
# LimitNOFILE=, then the service user with no capabilities. The last exec
# keeps the PID, so $! of a background call is the daemon's PID.
as_service() { # main|pre command...
  local role=$1; shift
  local extra=()
  [ -n "$listener" ] && extra+=("NOTIFY_SOCKET=@$notify_name")
  [ "$role" = main ] && [ -n "$watchdog" ] && extra+=("WATCHDOG_USEC=$((watchdog * 1000000))")
  # shellcheck disable=SC2016 # expanded by the inner sh
  exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    HOME=/ USER="$svc_user" LOGNAME="$svc_user" SHELL=/usr/sbin/nologin \
    STATE_DIRECTORY="/var/lib/$state_name" CREDENTIALS_DIRECTORY="$cred_dir" \
    SD="$state_name" BIND="$tmp/statebind" UMASK="${umask_value:-0022}" NOFILE="${nofile:-1024}" \
    MAIN="$role" \
    "${unit_env[@]}" "${extra[@]}" \
    unshare --mount --propagation private -- sh -c '
      set -e
      mount --bind "/var/lib/private/$SD" "$BIND"
      mount -t tmpfs -o mode=0755,size=64k tmpfs /var/lib/private
      mkdir "/var/lib/private/$SD"
      mount --move "$BIND" "/var/lib/private/$SD"
      umask "$UMASK"
      ulimit -n "$NOFILE" 2>/dev/null || true
      [ "$MAIN" = main ] && export WATCHDOG_PID=$$
      unset SD BIND UMASK NOFILE MAIN
      u=$1 g=$2; shift 2
      exec setpriv --reuid="$u" --regid="$g" --clear-groups \
        --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"' sh "$svc_user" "$svc_group" "$@"
}

backup_line=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/engine-auth-backup.service | head -n 1)
read -r -a backup_cmd <<<"$backup_line"
ok "backup unit ExecStart: ${backup_cmd[*]}"
run_backup() { # expected-text: the backup unit's ExecStart, as its (same) user
  local out rc=0 newest
  out=$(as_service pre "${backup_cmd[@]}" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/   | /'
  check "backup unit: ExecStart exits 0 (got $rc)" test "$rc" = 0
  check "backup unit: says \"$1\"" grep -q "$1" <<<"$out"
  newest=$(ls "$real_state/backups/"engine-auth-*.backup 2>/dev/null | tail -n 1)
  check "backup unit: $newest is mode 600, owned by $svc_user" \
    test "$(stat -c '%a %U' "$newest" 2>/dev/null)" = "600 $svc_user"
}

run_pre() { # expected-text
  local out rc=0
  out=$(as_service pre "${pre_cmd[@]}" 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/   | /'
  check "ExecStartPre exits 0 (got $rc)" test "$rc" = 0
  check "ExecStartPre says \"$1\"" grep -q "$1" <<<"$out"
}
start_service() {
  : >"$tmp/notify.mark"; wc -l <"$notify_log" >"$tmp/notify.mark" 2>/dev/null || true
  if ss -Hltn "sport = :$port" | grep -q .; then
    bad "port $port is free before ExecStart"; return 1
  fi
  as_service main "${start_cmd[@]}" >>"$log" 2>&1 &
  pid=$!
  local t0=$SECONDS
  until kill -0 "$pid" 2>/dev/null && curl -fsS "$base/health" >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ $((SECONDS - t0)) -ge "${start_timeout:-60}" ]; then
      show_log; bad "ExecStart: /health answers within ${start_timeout:-60} s"; return 1
    fi
    sleep 0.2
  done
  ok "ExecStart (PID $pid): /health answers after $((SECONDS - t0)) s"
  if [ -n "$listener" ]; then
    local from; from=$(cat "$tmp/notify.mark")
    for _ in $(seq 25); do
      tail -n +"$((from + 1))" "$notify_log" | grep -q "^$pid READY=1" && break; sleep 0.2
    done
    if tail -n +"$((from + 1))" "$notify_log" | grep -q "^$pid READY=1"; then
      ok "Type=notify: READY=1 from the main PID"
    else
      bad "Type=notify: READY=1 from the main PID; \$NOTIFY_SOCKET got (PID message):"
      tail -n +"$((from + 1))" "$notify_log" | sed 's/^/   | /'
    fi
  fi
}
stop_service() { # SIGTERM, as systemctl stop; SIGKILL after TimeoutStopSec=
  local rc=0 killer t0=$SECONDS
  if ! kill -TERM "$pid"; then
    bad "the daemon (PID $pid) still runs when it is stopped"; pid=''; return 1
  fi
  ( sleep "${stop_timeout:-90}"; kill -KILL "$pid" 2>/dev/null ) &
  killer=$!
  wait "$pid" || rc=$?
  kill "$killer" 2>/dev/null; wait "$killer" 2>/dev/null || true
  pid=
  # systemd counts exit 0 and death by SIGTERM as a clean stop.
  check "SIGTERM: clean exit within ${stop_timeout:-90} s (status $rc after $((SECONDS - t0)) s)" \
    sh -c "[ $rc = 0 ] || [ $rc = 143 ]"
}
reload_service() { # token: ExecReload=/bin/kill -HUP $MAINPID rotates the signing key
  local from
  from=$( (wc -l <"$notify_log") 2>/dev/null || echo 0)
  kill -HUP "$pid"
  for _ in $(seq 50); do
    grep -q "signing key rotated" "$log" && break; sleep 0.1
  done
  check "ExecReload (SIGHUP): the log says the signing key was rotated" grep -q "signing key rotated" "$log"
  if [ -n "$listener" ]; then
    check "ExecReload: RELOADING=1 then READY=1 from the main PID" \
      sh -c "tail -n +$((from + 1)) '$notify_log' | grep '^$pid ' | cut -d' ' -f2- | tr '\n' ' ' | grep -q 'RELOADING=1 READY=1'"
  fi
  check "ExecReload: a token issued before the reload still works (GET /users)" \
    quiet curl -fsS "$base/api/v1/auth/users" -H "Authorization: Bearer $1"
}
api() { # METHOD path json [token] -> body; fails on non-2xx
  local auth=()
  [ -n "${4:-}" ] && auth=(-H "Authorization: Bearer $4")
  curl -fsS -X "$1" "$base/api/v1/auth/$2" -H 'Content-Type: application/json' "${auth[@]}" -d "$3"
}
login() { # user password -> access token on stdout
  local body
  body=$(api POST login "{\"username\":\"$1\",\"password\":\"$2\"}") || return 1
  sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$body" | grep .
}
create_user() { # token username password
  api POST user "{\"username\":\"$2\",\"password\":\"$3\",\"roles\":{\"admin\":false,\"flows\":true,\"configure\":false,\"subscribe\":true,\"write\":true,\"read\":true}}" "$1"
}
owned_dir() { [ -d "$1" ] && [ "$(stat -c %U "$1")" = "$2" ]; }
not_in_file() { ! grep -qF -- "$1" "$2"; }
gone() { [ ! -e "$1" ] && [ ! -L "$1" ]; }

admin_pw=$(cat "$pwfile")
user=newcomer@example.com user_pw=correct-horse-battery
real_state=/var/lib/private/$state_name

run_pre "no store yet"
if start_service; then
  if tok=$(login admin "$admin_pw"); then
    ok "admin logs in with the password from $pwfile"
    check "POST /user creates $user" quiet create_user "$tok" "$user" "$user_pw"
    check "$user logs in" quiet login "$user" "$user_pw"
    reload_service "$tok"
    run_backup "through the running daemon"
  else
    show_log; bad "admin logs in with the password from $pwfile"
  fi
  check "the store is in $real_state, owned by $svc_user" owned_dir "$real_state/store" "$svc_user"
  check "no generated initial-admin-password (the credential was used)" \
    test ! -e "$real_state/initial-admin-password"
  check "the log does not contain the admin password" not_in_file "$admin_pw" "$log"
  stop_service
fi
run_backup "from the stopped daemon's store"
check "backup unit: --keep 7 kept both backups" \
  test "$(ls "$real_state/backups/"engine-auth-*.backup 2>/dev/null | wc -l)" = 2
run_pre "left as it is"
if start_service; then
  check "admin logs in after the restart" quiet login admin "$admin_pw"
  check "$user logs in after the restart" quiet login "$user" "$user_pw"
  stop_service
fi
[ "$step_failed" = 0 ] || show_log
end_step

# ---------------------------------------------------------------- step 3
begin_step "3 dpkg -i again (upgrade/reinstall), dpkg -r keeps data and config, dpkg --purge removes them"
if dpkg -i "$deb" >"$tmp/dpkg-i2.log" 2>&1; then ok "dpkg -i over the installed package exits 0"
else sed 's/^/   | /' "$tmp/dpkg-i2.log"; bad "dpkg -i over the installed package exits 0"; fi
check "$pwfile is unchanged by the reinstall" test "$(cat "$pwfile" 2>/dev/null)" = "$admin_pw"
check "the store is kept by the reinstall" test -d "$real_state/store"
if dpkg -r engine-auth >"$tmp/dpkg-r.log" 2>&1; then ok "dpkg -r engine-auth exits 0"
else sed 's/^/   | /' "$tmp/dpkg-r.log"; bad "dpkg -r engine-auth exits 0"; fi
check "status is config-files" \
  sh -c "dpkg-query -W -f='\${Status}' engine-auth | grep -q 'config-files'"
check "/usr/bin/engine-auth is gone" test ! -e /usr/bin/engine-auth
check "$unit is gone" test ! -e "$unit"
check "the store is kept ($real_state/store)" test -d "$real_state/store"
check "/var/lib/$state_name still leads to it" test -d "/var/lib/$state_name/store"
check "$pwfile is kept" test -s "$pwfile"
check "$conf is kept (conffile)" test -f "$conf"
if dpkg --purge engine-auth >"$tmp/dpkg-purge.log" 2>&1; then ok "dpkg --purge engine-auth exits 0"
else sed 's/^/   | /' "$tmp/dpkg-purge.log"; bad "dpkg --purge engine-auth exits 0"; fi
check "package is gone from dpkg's database" \
  sh -c "! dpkg-query -W -f='\${Status}' engine-auth 2>/dev/null | grep -q installed"
check "$real_state is removed" test ! -e "$real_state"
check "/var/lib/$state_name is removed" gone "/var/lib/$state_name"
check "$pwfile is removed" test ! -e "$pwfile"
check "/etc/engine-auth is removed" test ! -e /etc/engine-auth
for l in /etc/systemd/system/multi-user.target.wants/engine-auth.service \
         /etc/systemd/system/timers.target.wants/engine-auth-rotate.timer \
         /etc/systemd/system/timers.target.wants/engine-auth-backup.timer \
         /etc/systemd/system/engine-auth.service /etc/systemd/system/engine-auth-rotate.timer \
         /etc/systemd/system/engine-auth-backup.timer; do
  check "no $l left (enablement or mask)" gone "$l"
done
installed=0 created_state=0
end_step

echo
if [ ${#failed_steps[@]} = 0 ]; then
  echo "PASS deb-install-test ($target, $(basename "$deb")) in $((SECONDS - t_start)) s"
else
  echo "FAIL deb-install-test: ${failed_steps[*]} ($((SECONDS - t_start)) s)"
  exit 1
fi
