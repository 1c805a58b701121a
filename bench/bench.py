#!/usr/bin/env python3
"""engine-auth benchmark driver (run it through bench/run.sh, which builds first).

Starts the real release binary on temporary stores, drives it with wrk (Lua
scripts in bench/), runs the bare actix-web hello example under the same load
as the ceiling, and prints one table. Figures only: nothing here fails because
a machine is slow. Standard library only.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import concurrent.futures as futures
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
MIB = 1024 * 1024
ADMIN_PASSWORD = "bench-admin-password"
USER_PASSWORD = "bench-user-password"
# Hashes the daemon lets queue per hash thread (src/password.rs).
QUEUED_PER_THREAD = 8
ALL_ROLES = {"admin": True, "flows": True, "configure": True, "subscribe": True, "write": True, "read": True}
USER_ROLES = {"admin": False, "flows": True, "configure": False, "subscribe": True, "write": True, "read": True}
CHEAP_ARGON2 = ["--argon2-memory-kib", "256", "--argon2-iterations", "1", "--argon2-parallelism", "1"]

_children: list[subprocess.Popen] = []
_servers: list = []  # Server objects still running (stopped first, wrapped ones included)
_tmp_root: Path | None = None
_keep_tmp = False


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cleanup() -> None:
    for srv in list(_servers):
        try:
            srv.stop()
        except Exception:
            pass
    for p in list(_children):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=10)
            except Exception:
                p.kill()
                p.wait()
        _children.remove(p)
    if _tmp_root and _tmp_root.exists():
        if _keep_tmp:
            log(f"kept {_tmp_root}")
        else:
            shutil.rmtree(_tmp_root, ignore_errors=True)


def _on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


def spawn(cmd: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(cmd, **kw)
    _children.append(p)
    return p


def reap(p: subprocess.Popen) -> None:
    if p in _children:
        _children.remove(p)


def cpu_secs(pid: int) -> float:
    """User + system CPU time of process `pid` so far, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak(pid: int) -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0, own processes)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- HTTP


class Client:
    """A keep-alive JSON client for setup work (not for measuring)."""

    def __init__(self, port: int, token: str | None = None, source: str | None = None):
        self.port = port
        self.token = token
        self.source = (source, 0) if source else None
        self.conn = self.connect()

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60, source_address=self.source)

    def call(self, method: str, path: str, body=None, token: str | None = None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        tok = token or self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        for attempt in range(3):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                self.retry_after = r.getheader("Retry-After")
                return r.status, (json.loads(raw) if raw else None)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = self.connect()
                if attempt == 2:
                    raise
        raise RuntimeError("unreachable")

    def login(self, username: str, password: str) -> dict:
        """Logs in; like a well-behaved client, waits out a 429 or 503
        (too many checks in flight from this address, hash queue full)."""
        for _ in range(10):
            st, body = self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
            if st not in (429, 503):
                break
            time.sleep(float(self.retry_after or 1))
        if st != 200:
            raise RuntimeError(f"login {username!r} failed: {st} {body}")
        return body

    def close(self):
        self.conn.close()


def health_once(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# ---------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    log_path: Path
    env: dict = field(default_factory=dict)
    wrapped: bool = False
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready_after: float = 0.0

    def start(self, timeout: float = 120.0) -> float:
        """Starts and waits for /health; returns seconds from spawn to first 200."""
        self.log_file = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_AUTH_")}
        env.update(self.env)
        self.started_at = time.perf_counter()
        self.proc = spawn(self.cmd, stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                          stdin=subprocess.DEVNULL)
        _servers.append(self)
        deadline = self.started_at + timeout
        while True:
            if health_once(self.port):
                self.ready_after = time.perf_counter() - self.started_at
                return self.ready_after
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-3000:])
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.name} not healthy after {timeout}s; see {self.log_path}")
            time.sleep(0.0005)

    @property
    def pid(self) -> int:
        """The served process: the wrapper's child when wrapped (perf, strace)."""
        assert self.proc
        if not self.wrapped:
            return self.proc.pid
        pid = self.proc.pid
        for _ in range(3):  # perf -> engine-auth
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                break
            if not kids:
                break
            pid = int(kids[0])
        return pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            target = self.pid
            if target != self.proc.pid:
                try:
                    os.kill(target, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            reap(self.proc)
        if self in _servers:
            _servers.remove(self)
        self.proc = None
        if getattr(self, "log_file", None):
            self.log_file.close()


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = Path(args.bin).resolve()
        self.hello_bin = Path(args.hello).resolve()
        self.tmp = _tmp_root
        self.cores = os.cpu_count() or 1
        self.workers = args.workers or self.cores
        self.threads = args.wrk_threads or max(1, min(self.cores, 4))
        self.duration = args.duration
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.hello_cache: dict[str, dict] = {}
        self.hash_seconds = 0.0
        self.hash_source = "not measured in this run"
        self.empty_config = self.tmp / "empty-config.toml"
        self.empty_config.write_text("# bench: defaults only\n")
        self.wrk = shutil.which("wrk")
        if not self.wrk:
            sys.exit("wrk not found (apt-get install wrk)")

    # ------------------------------------------------------------ daemon

    def daemon(self, data_dir: Path, extra: list[str] | None = None, wrap: list[str] | None = None,
               tag: str = "", binary: Path | None = None, emulator: str | None = None,
               workers: int | None = None) -> Server:
        """`emulator` (qemu-user) runs `binary` in its own process: not a
        wrapper whose child is the daemon, as perf and strace are."""
        port = free_port()
        cmd = (wrap or []) + ([emulator] if emulator else []) + [
            str(binary or self.bin), "serve", "--listen", f"127.0.0.1:{port}",
            "--data-dir", str(data_dir), "--config", str(self.empty_config),
            "--workers", str(workers or self.workers)] + (extra or [])
        return Server(name=f"engine-auth{tag}", cmd=cmd, port=port, wrapped=bool(wrap),
                      log_path=self.tmp / f"engine-auth{tag}.log",
                      env={"ENGINE_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD})

    def hello(self) -> Server:
        port = free_port()
        return Server(name="hello", cmd=[str(self.hello_bin), "--listen", f"127.0.0.1:{port}",
                                         "--workers", str(self.workers)],
                      port=port, log_path=self.tmp / "hello.log")

    def build_store(self, name: str, users: int, flood_users: int) -> dict:
        """A store with `users` users (cheap hashes, seeded over HTTP while the
        daemon runs with cheap argon2 parameters) plus `flood_users` users
        created afterwards with the default parameters (for login)."""
        data = self.tmp / name
        t0 = time.perf_counter()
        srv = self.daemon(data, CHEAP_ARGON2, tag=f"-{name}-seed")
        srv.start()
        admin = Client(srv.port).login("admin", ADMIN_PASSWORD)["token"]
        ids = self.create_users(srv.port, admin, [f"user{i:06d}@bench.local" for i in range(1, users)],
                                parallel=8)
        srv.stop()
        seeded = time.perf_counter() - t0
        srv = self.daemon(data, tag=f"-{name}")
        srv.start()
        c = Client(srv.port)
        admin = c.login("admin", ADMIN_PASSWORD)["token"]
        flood = [f"flood{i:02d}@bench.local" for i in range(flood_users)]
        self.create_users(srv.port, admin, flood, parallel=2)
        # Sessions for the refresh scenarios, logged in now so that the
        # scenario's daemon has not hashed (argon2 memory) before it runs.
        logins = [("admin", ADMIN_PASSWORD)] + [(u, USER_PASSWORD) for u in flood]
        tokens = self.sessions(srv.port, logins, 64)
        srv.stop()
        log(f"store {name}: {users} users + {flood_users} default-hash users in {seeded:.1f}s")
        return {"dir": data, "users": users + flood_users, "ids": ids, "flood": flood, "seed_s": seeded,
                "tokens": tokens}

    def create_users(self, port: int, token: str, names: list[str], parallel: int) -> list[str]:
        chunks = [names[i::parallel] for i in range(parallel)]

        def work(chunk):
            c = Client(port, token)
            out = []
            for n in chunk:
                st, body = c.call("POST", "/api/v1/auth/user",
                                  {"username": n, "password": USER_PASSWORD, "roles": USER_ROLES})
                if st != 200:
                    raise RuntimeError(f"create {n}: {st} {body}")
                out.append(body["_id"])
            c.close()
            return out

        with futures.ThreadPoolExecutor(parallel) as ex:
            return [i for part in ex.map(work, chunks) for i in part]

    # ------------------------------------------------------------ wrk

    def wrk_run(self, port: int, script: str, args: list[str], connections: int, duration: float,
                timeout: float = 10.0, threads: int | None = None) -> dict:
        threads = min(threads or self.threads, connections)
        cmd = [self.wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               f"--timeout", f"{timeout:g}s", "-s", str(BENCH_DIR / script),
               f"http://127.0.0.1:{port}"] + (["--"] + args if args else [])
        env = dict(os.environ, BENCH_LUA_DIR=str(BENCH_DIR))
        p = spawn(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
        out, err = p.communicate()
        reap(p)
        m = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
        if p.returncode != 0 or not m:
            raise RuntimeError(f"wrk failed ({p.returncode}): {err}\n{out}")
        r = json.loads(m.group(1))
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
        socket_errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
        status_errors = r["non2xx"] if r["non2xx_counted"] else r["status"]
        r["errors"] = socket_errors + status_errors + r["starved"]
        return r

    def measure(self, srv: Server, script: str, args: list[str], connections: int,
                duration: float | None = None, timeout: float = 10.0, threads: int | None = None) -> dict:
        reset_ok = reset_peak(srv.pid)
        r = self.wrk_run(srv.port, script, args, connections, duration or self.duration, timeout, threads)
        st = proc_status(srv.pid)
        r["peak_rss"] = st.get("VmHWM") if reset_ok else None
        r["rss_after"] = st.get("VmRSS")
        return r

    def ceiling(self, key: str, script: str, args: list[str], connections: int, timeout: float = 10.0,
                threads: int | None = None) -> dict:
        """The hello server under exactly the same wrk invocation."""
        if key not in self.hello_cache:
            h = self.hello()
            h.start()
            try:
                self.hello_cache[key] = self.measure(h, script, args, connections, timeout=timeout,
                                                     threads=threads)
            finally:
                h.stop()
        return self.hello_cache[key]

    def row(self, scenario: str, r: dict | None, ceiling: dict | None = None, target: str = "",
            verdict: str = "", **extra) -> dict:
        row = {"scenario": scenario, "target": target, "verdict": verdict}
        if r:
            row.update(rps=r["rps"], p50=r["p50_us"] / 1000, p99=r["p99_us"] / 1000,
                       errors=r["errors"], peak_rss=r.get("peak_rss"), requests=r["requests"])
            # Failures that no slowness explains: wrong statuses, refused or
            # reset connections (timeouts and a starved refresh-token pool
            # are left out: a slow machine).
            row["hard_errors"] = r["errors"] - r["timeout"] - r["starved"]
            if ceiling and ceiling["rps"]:
                row["ratio"] = r["rps"] / ceiling["rps"]
        row.update(extra)
        self.rows.append(row)
        return row

    # ------------------------------------------------------------ scenarios

    def sessions(self, port: int, users: list[tuple[str, str]], n: int) -> Path:
        """Logs in `n` sessions (round robin over users); writes their refresh tokens."""
        def work(i):
            c = Client(port)
            u, pw = users[i % len(users)]
            t = c.login(u, pw)["refreshToken"]
            c.close()
            return t

        # One address may have as many checks in flight as there are hash
        # threads (the daemon's default: one per core); more would get 429.
        with futures.ThreadPoolExecutor(min(4, self.cores)) as ex:
            toks = list(ex.map(work, range(n)))
        path = self.tmp / f"refresh-tokens-{time.monotonic_ns()}.txt"
        path.write_text("\n".join(toks) + "\n")
        return path

    def api_scenarios(self, store: dict, label: str, base: bool) -> None:
        srv = self.daemon(store["dir"], tag=f"-{label}")
        srv.start()
        c = Client(srv.port)
        admin = c.login("admin", ADMIN_PASSWORD)
        token = admin["token"]
        ids_file = self.tmp / f"ids-{label}.txt"
        sample = store["ids"][:: max(1, len(store["ids"]) // 1000)][:1000] or [self.admin_id(c, token)]
        ids_file.write_text("\n".join(sample) + "\n")
        n_users = store["users"]
        tgt_get = "≥70% of hello"

        def get_verdict(r, ceil):
            ok = r["rps"] >= 0.7 * ceil["rps"] and r["errors"] == 0
            return "met" if ok else "MISSED"

        # Authenticated GETs at 32 connections.
        if self.want("get"):
            self.get_rows(srv, token, ids_file, n_users, base, tgt_get, get_verdict)
        if base and self.want("refresh"):
            self.refresh_scenario(srv, store)
        if self.want("login"):
            # On a fresh daemon: the flood's own memory, not what the
            # refresh storm before it left behind (reported as a note).
            if base and self.want("refresh"):
                self.notes.append(f"RSS after the GET and refresh scenarios, before the login flood: "
                                  f"{proc_status(srv.pid).get('VmRSS', 0) / MIB:.1f} MiB (the flood "
                                  "runs on a restarted daemon)")
            srv.stop()
            srv = self.daemon(store["dir"], ["--trusted-proxy", "127.0.0.1"], tag=f"-{label}-login")
            srv.start()
            self.login_scenario(srv, store, label, n_users)
        srv.stop()

    def get_rows(self, srv, token, ids_file, n_users, base, tgt_get, get_verdict) -> None:
        args = [token, "/api/v1/auth/users"]
        r = self.measure(srv, "get.lua", args, 32)
        ceil = self.ceiling("get-users", "get.lua", args, 32)
        self.row(f"GET /users ({n_users} users) c32", r, ceil, tgt_get if base else "list may be slower",
                 get_verdict(r, ceil) if base else "report")
        roles_args = [token, "/api/v1/auth/user/roles/{id}", str(ids_file)]
        r = self.measure(srv, "get.lua", roles_args, 32)
        ceil = self.ceiling("get-roles", "get.lua", roles_args, 32)
        self.row(f"GET /user/roles/{{id}} ({n_users} users) c32", r, ceil, tgt_get, get_verdict(r, ceil))
        if not base:
            return
        # Latency: the same 32 connections from one wrk thread. With two,
        # wrk's threads and the server's two workers contend for the two
        # cores and the 1% tail is the scheduler's (hello's own p99 goes to
        # 7-8 ms); one wrk thread still saturates the server.
        for key, label, a in (("users", "GET /users", args), ("roles", "GET /user/roles/{id}", roles_args)):
            r = self.measure(srv, "get.lua", a, 32, threads=1)
            ceil = self.ceiling(f"get-{key}-t1", "get.lua", a, 32, threads=1)
            ok = r["p99_us"] < 5000 and r["errors"] == 0
            self.row(f"{label} ({n_users} users) c32, wrk 1 thread", r, ceil, "p99<5ms",
                     "met" if ok else "MISSED")
        # Forward-auth: the check a proxy makes before every request it
        # forwards (200, empty body, the user headers).
        verify_args = [token, "/api/v1/auth/verify?roles=read"]
        r = self.measure(srv, "get.lua", verify_args, 32)
        ceil = self.ceiling("verify", "get.lua", verify_args, 32)
        ok = r["rps"] >= 0.8 * ceil["rps"] and r["errors"] == 0
        self.row("GET /verify?roles=read (forward-auth) c32", r, ceil, "≥80% of hello",
                 "met" if ok else "MISSED")
        r = self.measure(srv, "get.lua", verify_args, 32, threads=1)
        ceil = self.ceiling("verify-t1", "get.lua", verify_args, 32, threads=1)
        ok = r["p99_us"] < 5000 and r["errors"] == 0
        self.row("GET /verify?roles=read (forward-auth) c32, wrk 1 thread", r, ceil, "p99<5ms",
                 "met" if ok else "MISSED")

    def token_for(self, srv: Server, want: str) -> str:
        """An admin access token signed with `want` (a new key signs from
        the next second on)."""
        c = Client(srv.port)
        token = c.login("admin", ADMIN_PASSWORD)["token"]
        for _ in range(30):
            if json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == want:
                break
            time.sleep(0.2)
            token = c.login("admin", ADMIN_PASSWORD)["token"]
        c.close()
        return token

    def alg_ids_file(self, store: dict) -> Path:
        """The user ids the alg and metrics rows GET, cycled by get.lua."""
        ids_file = self.tmp / "ids-alg.txt"
        ids_file.write_text("\n".join(store["ids"][:1000] or ["-"]) + "\n")
        return ids_file

    def alg(self, store: dict) -> None:
        """Authenticated GET /user/roles/{id} with an HS256, an EdDSA and an
        ES256 access token, beside the hello ceiling, each on a fresh daemon over
        the same store. The configurations run in turn, `reps` rounds (3;
        1 with --smoke), and each row is the round with the median req/s,
        so that other work on the machine falls on all of them alike. A
        token is verified once (the verified-token cache): the cost of a
        first verification is Criterion's `verify_refresh`."""
        ids_file = self.alg_ids_file(store)
        configs = (("HS256 token", "HS256", ["--signing-alg", "HS256"]),
                   ("EdDSA token", "EdDSA", ["--signing-alg", "EdDSA", "--jwks-max-age-secs", "0"]),
                   ("ES256 token", "ES256", ["--signing-alg", "ES256", "--jwks-max-age-secs", "0"]))
        reps = self.args.reps or (1 if self.args.smoke else 3)
        runs: dict[str, list[dict]] = {name: [] for name, _, _ in configs}
        runs["hello"] = []
        for rep in range(reps):
            # Every other round runs the configurations in reverse, so that
            # a machine slowing down or speeding up within a round favours
            # none of them.
            for name, want, extra in (configs if rep % 2 == 0 else configs[::-1]):
                srv = self.daemon(store["dir"], extra, tag=f"-alg-{rep}-{want}")
                srv.start()
                args = [self.token_for(srv, want), "/api/v1/auth/user/roles/{id}", str(ids_file)]
                cpu = cpu_secs(srv.pid)
                r = self.measure(srv, "get.lua", args, 32)
                # The daemon's own CPU time per request: what the feature
                # costs, whatever else runs on the machine.
                r["cpu_us"] = (cpu_secs(srv.pid) - cpu) * 1e6 / max(1, r["requests"])
                runs[name].append(r)
                srv.stop()
            h = self.hello()
            h.start()
            try:
                runs["hello"].append(self.measure(h, "get.lua", args, 32))
            finally:
                h.stop()

        def median(rs: list[dict]) -> dict:
            return sorted(rs, key=lambda r: r["rps"])[len(rs) // 2]

        ceil = median(runs["hello"])
        def spread(rs: list[dict]) -> str:
            text = "/".join(f"{r['rps'] / 1000:.1f}k" for r in rs)
            if "cpu_us" in rs[0]:
                text += "; daemon CPU per request " + "/".join(f"{r['cpu_us']:.1f}" for r in rs) + " µs"
            return text

        for name, want, _ in configs:
            r = median(runs[name])
            ok = r["rps"] >= 0.7 * ceil["rps"] and r["errors"] == 0
            self.row(f"GET /user/roles/{{id}} c32, {name} (median of {reps})", r, ceil,
                     "≥70% of hello", "met" if ok else "MISSED")
            self.notes.append(f"{name}: req/s per round {spread(runs[name])}")
        self.notes.append(f"hello (ceiling of these rows): req/s per round {spread(runs['hello'])}")
        cpu = lambda n: sorted(r["cpu_us"] for r in runs[n])[len(runs[n]) // 2]
        self.notes.append(f"daemon CPU per request (medians): HS256 {cpu('HS256 token'):.1f} µs, EdDSA "
                          f"{cpu('EdDSA token'):.1f} µs, ES256 {cpu('ES256 token'):.1f} µs")

    def metrics_cost(self, store: dict) -> None:
        """GET /user/roles/{id} with `--metrics-listen` off and on (target:
        on within 5% of off), three ways:
        - throughput: both daemons, each on its own copy of the store, under
          load at once from a wrk each, `rounds` times (4; 2 with --smoke),
          each round's load starting on the other one first.
          Whatever else the machine does falls on both in the same second,
          and the scheduler shares the cores between their workers, so the
          one that costs more per request answers fewer. (Each daemon alone
          in turn, on this 2-core VM, gave per-round ratios from 85% to
          116%: its speed drifts by a third within a minute.)
        - the daemons' CPU time per request in those same runs;
        - instructions per request under valgrind (`instructions_per_request`),
          which nothing else on the machine changes, though it cannot see
          two cores contending for a cache line (Criterion's
          `metrics_record` group measures that)."""
        ids_file = self.alg_ids_file(store)
        copies = {}
        for name in ("off", "on"):  # alike: both fresh copies
            copies[name] = self.tmp / f"metrics-{name}-store"
            shutil.rmtree(copies[name], ignore_errors=True)
            shutil.copytree(store["dir"], copies[name])
        daemons = {"off": self.daemon(copies["off"], ["--signing-alg", "HS256"], tag="-metrics-off"),
                   "on": self.daemon(copies["on"], ["--signing-alg", "HS256", "--metrics-listen",
                                                    f"127.0.0.1:{free_port()}"], tag="-metrics-on")}
        rounds = 2 if self.args.smoke else 4
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        try:
            for srv in daemons.values():
                srv.start()
            args = {name: [self.token_for(srv, "HS256"), "/api/v1/auth/user/roles/{id}", str(ids_file)]
                    for name, srv in daemons.items()}
            for i in range(rounds):
                # Each round's load starts on the other daemon first.
                order = list(daemons.items())[::1 if i % 2 == 0 else -1]
                cpu = {name: cpu_secs(srv.pid) for name, srv in order}
                with futures.ThreadPoolExecutor(2) as ex:
                    jobs = {name: ex.submit(self.measure, srv, "get.lua", args[name], 32)
                            for name, srv in order}
                    for name, srv in daemons.items():
                        r = jobs[name].result()
                        r["cpu_us"] = (cpu_secs(srv.pid) - cpu[name]) * 1e6 / max(1, r["requests"])
                        runs[name].append(r)
        finally:
            for srv in daemons.values():
                srv.stop()

        def total(rs: list[dict]) -> dict:
            requests = sum(r["requests"] for r in rs)
            us = sum(r["duration_us"] for r in rs)
            return {"rps": requests / (us / 1e6) if us else 0.0, "requests": requests,
                    "errors": sum(r["errors"] for r in rs), "timeout": sum(r["timeout"] for r in rs),
                    "starved": sum(r["starved"] for r in rs),
                    "p50_us": statistics.median(r["p50_us"] for r in rs),
                    "p99_us": max(r["p99_us"] for r in rs),
                    "peak_rss": max((r["peak_rss"] or 0) for r in rs) or None,
                    "cpu_us": statistics.median(r["cpu_us"] for r in rs)}

        # Instructions per request, counted by valgrind (cachegrind): no
        # other work on the machine changes them.
        icount = None
        if shutil.which("valgrind"):
            ids = store["ids"][:1000] or ["-"]
            icount = {name: self.instructions_per_request(copies[name], extra, ids, f"-icount-{name}")
                      for name, extra in (("off", []),
                                          ("on", ["--metrics-listen", f"127.0.0.1:{free_port()}"]))}

        t_off, t_on = total(runs["off"]), total(runs["on"])
        ratio = t_on["rps"] / t_off["rps"] if t_off["rps"] else 0.0
        ok = ratio >= 0.95 and t_on["errors"] == 0 and t_off["errors"] == 0
        label = f"{rounds} × {self.duration:g} s, both at once"
        self.row(f"GET /user/roles/{{id}} c32, metrics off ({label})", t_off)
        self.row(f"GET /user/roles/{{id}} c32, metrics on ({label})", t_on, None,
                 f"≥95% of off: {ratio:.1%}", "met" if ok else "MISSED")
        per_round = "/".join(f"{a['rps'] / b['rps']:.1%}" for a, b in zip(runs["on"], runs["off"]) if b["rps"])
        self.notes.append(
            f"metrics on vs off (GET /user/roles/{{id}} c32, both under load at once): {t_on['rps']:,.0f} vs "
            f"{t_off['rps']:,.0f} req/s = {ratio:.1%} (target ≥95%: {'met' if ok else 'MISSED'}); per round "
            f"{per_round}; daemon CPU per request (medians) {t_off['cpu_us']:.1f} µs off, "
            f"{t_on['cpu_us']:.1f} µs on")
        if shutil.which("valgrind"):
            ids = store["ids"][:1000] or ["-"]
            icount = {name: self.instructions_per_request(copies[name], extra, ids, f"-icount-{name}")
                      for name, extra in (("off", []),
                                          ("on", ["--metrics-listen", f"127.0.0.1:{free_port()}"]))}
            self.notes.append(
                f"metrics on vs off, instructions per GET /user/roles/{{id}} (valgrind --tool=cachegrind, "
                f"one worker, keep-alive, startup subtracted): {icount['on']:,.0f} vs {icount['off']:,.0f} = "
                f"{icount['on'] / icount['off']:.1%}")
        else:
            self.notes.append("instructions per request not counted: valgrind not found")

    def instructions_per_request(self, data_dir: Path, extra: list[str], ids: list[str], tag: str) -> float:
        """Instructions the daemon (one worker, under cachegrind) runs per
        authenticated GET /user/roles/{id}: two runs of different lengths,
        so that starting and stopping cancel out."""
        counts = {}
        lengths = (100, 400) if self.args.smoke else (500, 2500)
        for n in lengths:
            out = self.tmp / f"cachegrind{tag}-{n}.out"
            srv = self.daemon(data_dir, ["--signing-alg", "HS256"] + extra, tag=f"{tag}-{n}", workers=1,
                              wrap=["valgrind", "--tool=cachegrind", "--cache-sim=no",
                                    f"--cachegrind-out-file={out}"])
            srv.start(timeout=300)
            try:
                c = Client(srv.port, self.token_for(srv, "HS256"))
                for i in range(n):
                    st, body = c.call("GET", f"/api/v1/auth/user/roles/{ids[i % len(ids)]}")
                    if st != 200:
                        raise RuntimeError(f"GET under valgrind: {st} {body}")
                c.close()
            finally:
                srv.stop()
            m = re.findall(r"I\s+refs:\s+([\d,]+)", srv.log_path.read_text(errors="replace"))
            if not m:
                raise RuntimeError(f"no instruction count in {srv.log_path}")
            counts[n] = int(m[-1].replace(",", ""))
        (a, b) = lengths
        return (counts[b] - counts[a]) / (b - a)

    def login_scenario(self, srv, store, label, n_users) -> None:
        # Login flood, users with default-parameter hashes, from 256 clients
        # behind a trusted proxy (X-Forwarded-For), as many connections as
        # the hash queue holds (QUEUED_PER_THREAD per hash thread, one
        # thread per core): every hash thread always has work, nothing is
        # refused. Beyond that the daemon answers 503 at once (the next
        # scenario measures what that buys a login).
        creds = self.tmp / f"creds-{label}.txt"
        creds.write_text("".join(f"{u}\t{USER_PASSWORD}\n" for u in store["flood"]))
        conns = QUEUED_PER_THREAD * self.cores
        args = [str(creds), "forwarded"]
        r = self.measure(srv, "login.lua", args, conns, timeout=30)
        ceil = self.ceiling(f"login-c{conns}", "login.lua", args, conns, timeout=30)
        self.login_row(f"login flood ({n_users} users) c{conns}, 256 clients via a trusted proxy", r, ceil)

    def legit_logins(self, port: int, user: str, seconds: float) -> tuple[list[float], int]:
        """One login after the other from 127.0.0.2 for `seconds`: the
        latencies (ms) of those answered 200, and how many were not."""
        c = Client(port, source="127.0.0.2")
        times, failed = [], 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            st, _ = c.call("POST", "/api/v1/auth/login", {"username": user, "password": USER_PASSWORD})
            if st == 200:
                times.append((time.perf_counter() - t) * 1000)
            else:
                failed += 1
        c.close()
        return times, failed

    def login_under_flood(self, store: dict) -> None:
        """A legitimate user logging in from 127.0.0.2, one login after the
        other, while wrk floods wrong passwords (every flood user's name,
        that user's too) from 127.0.0.1; beside the same user's logins
        without the flood (the ceiling). Reported, not judged."""
        n = self.args.flood_connections
        srv = self.daemon(store["dir"], tag="-underflood")
        srv.start()
        user = store["flood"][0]
        wrong = self.tmp / "creds-wrong.txt"
        wrong.write_text("".join(f"{u}\twrong-password-{i:02d}\n" for i, u in enumerate(store["flood"])))
        port = srv.port
        Client(port).login(user, USER_PASSWORD)  # warm: a hash thread's argon2 memory
        alone, alone_failed = self.legit_logins(port, user, self.duration)
        # The flood's first burst is its worst moment (n guesses at once,
        # before any failure is recorded): the logins start with it.
        with futures.ThreadPoolExecutor(1) as ex:
            flood = ex.submit(self.wrk_run, port, "login.lua", [str(wrong)], n, self.duration, 30.0)
            time.sleep(0.05)
            flooded, flooded_failed = self.legit_logins(port, user, self.duration)
            f = flood.result()
        srv.stop()

        def pct(xs: list[float], p: float) -> float:
            if not xs:
                return float("nan")
            xs = sorted(xs)
            return xs[min(len(xs) - 1, max(0, math.ceil(len(xs) * p / 100) - 1))]

        base = self.row("login from 127.0.0.2, alone (ceiling of the next row)", None,
                        target="report", verdict="report",
                        rps=len(alone) / self.duration, p50=pct(alone, 50), p99=pct(alone, 99),
                        errors=alone_failed,
                        value=f"{len(alone)} logins one after the other, slowest {max(alone, default=0):.1f} ms")
        p99, p99_base = pct(flooded, 99), base["p99"]
        self.row(f"login from 127.0.0.2 while c{n} wrong logins flood from 127.0.0.1", None,
                 target="report (bounded)", verdict="report",
                 rps=len(flooded) / self.duration, p50=pct(flooded, 50), p99=p99, errors=flooded_failed,
                 value=f"p99 {p99:.1f} ms vs {p99_base:.1f} ms alone ({p99 / p99_base:.1f}x), "
                       f"slowest {max(flooded, default=0):.1f} ms; "
                       f"the flood: {f['rps']:,.0f} req/s, {f['s401']:,} checked (401), "
                       f"{f['s429']:,} 429, {f['s503']:,} 503")

    def admin_id(self, c: Client, token: str) -> str:
        st, body = c.call("GET", "/api/v1/auth/user/admin", token=token)
        return body["_id"]

    def refresh_scenario(self, srv: Server, store: dict) -> None:
        conns = 32
        threads = min(self.threads, conns)
        r = self.measure(srv, "refresh.lua", [str(store["tokens"]), str(threads)], conns)
        ceil = self.ceiling("refresh", "refresh.lua", [str(store["tokens"]), str(threads), "ceiling"], conns)
        ok = r["rps"] >= 5000 and r["errors"] == 0
        self.row("refresh (rotation, durable) c32", r, ceil, "≥5,000/s", "met" if ok else "MISSED")

    def fresh_sessions(self, srv: Server, store: dict) -> Path:
        """Sessions logged in on the running daemon, outside the counted
        window. The store's own second set may be gone by now: the login
        flood logs the same few users in hundreds of times, and the session
        cap (50 per user) ends their oldest sessions, as it should."""
        logins = [("admin", ADMIN_PASSWORD)] + [(u, USER_PASSWORD) for u in store["flood"]]
        return self.sessions(srv.port, logins, 64)

    def flush_scenario(self, store: dict) -> None:
        """Refresh at 32 connections, counting fsync-family syscalls during
        the wrk window. With perf: the daemon runs under `perf stat -I`
        counting syscall tracepoints in the kernel (no stops, so the batching
        it measures is the real one). Otherwise `strace -f -c -p PID`, which
        stops every syscall and distorts timing (and so the batching)."""
        events = ["syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync",
                  "syscalls:sys_enter_sync_file_range", "syscalls:sys_enter_msync"]
        perf = shutil.which("perf")
        if perf and subprocess.run([perf, "stat", "-e", events[0], "true"],
                                   capture_output=True).returncode == 0:
            trace = self.tmp / "perf-stat.csv"
            wrap = [perf, "stat", "-x,", "-I", "100", "-e", ",".join(events), "-o", str(trace), "--"]
            srv = self.daemon(store["dir"], wrap=wrap, tag="-flushes")
            srv.start()
            spawned = srv.started_at
            tokens = self.fresh_sessions(srv, store)
            time.sleep(0.6)
            t0 = time.perf_counter()
            r = self.wrk_run(srv.port, "refresh.lua", [str(tokens), str(self.threads)], 32,
                             self.duration)
            t1 = time.perf_counter()
            time.sleep(0.6)
            srv.stop()
            lo, hi = t0 - spawned - 0.3, t1 - spawned + 0.45
            calls: dict = {}
            for line in trace.read_text(errors="replace").splitlines():
                f = line.strip().split(",")
                if len(f) < 4 or not f[3].startswith("syscalls:"):
                    continue
                try:
                    ts, cnt = float(f[0]), int(f[1])
                except ValueError:
                    continue
                if lo < ts <= hi:
                    name = f[3].removeprefix("syscalls:sys_enter_")
                    calls[name] = calls.get(name, 0) + cnt
            how = "perf syscall tracepoints"
        elif shutil.which("strace"):
            srv = self.daemon(store["dir"], tag="-flushes")
            srv.start()
            tokens = self.fresh_sessions(srv, store)
            out = self.tmp / "strace.txt"
            st = spawn(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync,sync_file_range,msync",
                        "-o", str(out), "-p", str(srv.pid)], stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            r = self.wrk_run(srv.port, "refresh.lua", [str(tokens), str(self.threads)], 32,
                             self.duration)
            st.send_signal(signal.SIGINT)
            st.wait(timeout=30)
            reap(st)
            srv.stop()
            text = out.read_text(errors="replace") if out.exists() else ""
            if "% time" not in text:
                self.row("refresh c32: store flushes/request", r, None, "≤0.25 flushes/req", "n/a",
                         value="strace could not attach (ptrace not permitted?)")
                return
            calls = {}
            for line in text.splitlines():
                f = line.split()
                if len(f) >= 5 and f[-1] in ("fsync", "fdatasync", "sync_file_range", "msync"):
                    calls[f[-1]] = calls.get(f[-1], 0) + int(f[3])
            how = "strace -c (ptrace: slows the daemon)"
        else:
            self.row("refresh c32: store flushes/request", None, target="≤0.25", verdict="n/a",
                     value="neither perf nor strace installed")
            return
        # fsync and fdatasync are what make a write durable (the store ends
        # every group commit in one durable redb commit, one fdatasync);
        # sync_file_range only starts writeback, so it is listed but not
        # counted as a sync.
        n = calls.get("fsync", 0) + calls.get("fdatasync", 0)
        per = n / r["requests"] if r["requests"] else float("nan")
        self.flushes_per_request = per
        listed = ", ".join(f"{k} {v}" for k, v in sorted(calls.items())) or "none"
        self.row("refresh c32, counting syncs: fsyncs/request", r, None, "≤0.25 fsyncs/req",
                 "met" if per <= 0.25 else "MISSED",
                 value=f"{per:.2f} ({n} fsync+fdatasync / {r['requests']} requests; "
                       f"all: {listed}; {how})")

    def login_row(self, scenario: str, r: dict, ceil: dict) -> None:
        hash_s = self.hash_seconds
        ideal = self.cores / hash_s if hash_s else None
        mem = 19456 * 1024
        cap = self.cores  # --max-concurrent-hashes default: number of CPUs
        rss_cap = cap * mem + 24 * MIB
        parts = []
        ok = r["errors"] == 0
        if ideal:
            parts.append(f"≥{0.9 * ideal:.0f}/s (90% of {self.cores} cores/{hash_s * 1000:.1f}ms)")
            ok = ok and r["rps"] >= 0.9 * ideal
        parts.append(f"peak RSS≤{rss_cap / MIB:.0f}MiB")
        if r.get("peak_rss") is not None:
            ok = ok and r["peak_rss"] <= rss_cap
        value = f"{r['rps'] / ideal * 100:.0f}% of ideal" if ideal else ""
        par = self.args.parallel_hashes_per_s
        if par:
            value += f"; {r['rps'] / par * 100:.0f}% of the {par:.0f}/s {self.cores} threads hash alone"
        self.row(scenario, r, ceil, "; ".join(parts) + "; 0 errors", "met" if ok else "MISSED",
                 value=value)

    def measure_hash_time(self, store: dict) -> None:
        """One login at a time (no contention): ≈ one default argon2id verify
        plus a session write. Criterion's figure replaces it when given."""
        if self.args.hash_ms:
            self.hash_seconds = self.args.hash_ms / 1000
            self.hash_source = "Criterion password/verify_blocking"
            return
        # The daemon's own measurement (`tune-argon2`, median of 3 hashes);
        # its 19 MiB / 2 passes row is the default parameters.
        try:
            out = subprocess.run([str(self.bin), "tune-argon2", "--target-ms", "1000",
                                  "--max-memory-mib", "19"], capture_output=True, text=True,
                                 timeout=120).stdout
            m = re.search(r"^\s*19\s+2\s+1\s+([\d.]+)", out, re.M)
            if m:
                self.hash_seconds = float(m.group(1)) / 1000
                self.hash_source = "engine-auth tune-argon2 (19 MiB, t=2, p=1)"
                return
        except (OSError, subprocess.SubprocessError):
            pass
        srv = self.daemon(store["dir"], tag="-hash")
        srv.start()
        c = Client(srv.port)
        u = store["flood"][0]
        c.login(u, USER_PASSWORD)
        times = []
        for _ in range(15):
            t = time.perf_counter()
            c.login(u, USER_PASSWORD)
            times.append(time.perf_counter() - t)
        c.close()
        srv.stop()
        self.hash_seconds = statistics.median(times)
        self.hash_source = "median of 15 sequential logins"

    def arm_under_qemu(self, store: dict, runs: int) -> None:
        """Start-up and idle memory of the static ARM builds (dist/, from
        scripts/build-release.sh) under qemu-user on the same store. Reported,
        not judged: emulation makes start-up slower than on a device, and
        the RSS is qemu's process, its translation cache included."""
        for triple, emulator in (("aarch64-unknown-linux-musl", "qemu-aarch64-static"),
                                 ("armv7-unknown-linux-gnueabihf", "qemu-arm-static")):
            binary = ROOT / "dist" / f"engine-auth-{triple}"
            qemu = shutil.which(emulator)
            if not binary.exists() or not qemu:
                missing = f"dist/{binary.name} (scripts/build-release.sh {triple})" if not binary.exists() \
                    else f"{emulator} (apt-get install qemu-user-static)"
                self.notes.append(f"{triple} under qemu-user: not measured, no {missing}")
                continue
            times, rss, hwm = [], 0, 0
            for i in range(runs):
                srv = self.daemon(store["dir"], tag=f"-{triple}", binary=binary, emulator=qemu)
                times.append(srv.start())
                if i == runs - 1:
                    time.sleep(3)
                    st = proc_status(srv.pid)
                    rss, hwm = st.get("VmRSS", 0), st.get("VmHWM", 0)
                srv.stop()
            n = store["users"]
            med = statistics.median(times)
            self.row(f"{triple} under qemu-user: start-up to first /health ({n} users)", None,
                     target="report (emulated)", verdict="report",
                     value=f"median {med * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {runs} runs)")
            self.row(f"{triple} under qemu-user: RSS 3 s after start ({n} users)", None,
                     target="report (qemu's own memory included)", verdict="report", peak_rss=hwm,
                     value=f"VmRSS {rss / MIB:.1f} MiB (VmHWM {hwm / MIB:.1f} MiB)")

    def startup_and_idle(self, store: dict, runs: int) -> None:
        times, rss_list, hwm_list = [], [], []
        for i in range(runs):
            srv = self.daemon(store["dir"], tag=f"-start{store['users']}")
            times.append(srv.start())
            if i == runs - 1:
                time.sleep(3)  # the dummy-hash warm-up runs right after start
                st = proc_status(srv.pid)
                rss_list.append(st.get("VmRSS", 0))
                hwm_list.append(st.get("VmHWM", 0))
            srv.stop()
        med = statistics.median(times)
        n = store["users"]
        self.row(f"start-up to first /health ({n} users)", None, target="≤100 ms",
                 verdict="met" if med <= 0.1 else "MISSED",
                 value=f"median {med * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {runs} runs)")
        rss = rss_list[-1]
        self.row(f"idle RSS 3 s after start ({n} users)", None, target="≤12 MiB",
                 verdict="met" if rss <= 12 * MIB else "MISSED", peak_rss=hwm_list[-1],
                 value=f"VmRSS {rss / MIB:.1f} MiB (VmHWM {hwm_list[-1] / MIB:.1f} MiB)")

    def binary_size(self) -> None:
        p = ROOT / "dist" / "engine-auth-aarch64-unknown-linux-musl"
        if not p.exists() and self.args.build_aarch64:
            log("building the static aarch64 binary (scripts/build-release.sh)")
            subprocess.run([str(ROOT / "scripts" / "build-release.sh"), "aarch64-unknown-linux-musl"],
                           cwd=ROOT, check=False, stdout=sys.stderr)
        host = self.bin.stat().st_size
        if p.exists():
            size = p.stat().st_size
            age = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime))
            self.row("static aarch64 binary (stripped)", None, target="≤8 MiB",
                     verdict="met" if size <= 8 * MIB else "MISSED",
                     value=f"{size / MIB:.2f} MiB ({size} B, built {age}); x86_64 release {host / MIB:.2f} MiB")
        else:
            self.row("static aarch64 binary (stripped)", None, target="≤8 MiB", verdict="n/a",
                     value=f"not built (bench/run.sh --full builds it); x86_64 release {host / MIB:.2f} MiB")

    # ------------------------------------------------------------ full only

    def scale(self) -> None:
        n = self.args.scale_users
        store = self.build_store(f"scale{n}", n, 8)
        self.api_scenarios(store, f"scale{n}", base=False)
        self.startup_and_idle(store, 3)
        du = dir_size(store["dir"] / "store")
        self.notes.append(f"{n}-user store on disk: {du / MIB:.1f} MiB; seeding over HTTP took "
                          f"{store['seed_s']:.0f} s")

    def space_rows(self, text: str) -> None:
        pat = re.compile(r"^\s*(\w+): (\d+) writes in (\d+) s \((\d+)/s, (\d+) store flushes\); live data "
                         r"([\d.]+) MiB in (\d+) entries; on disk ([\d.]+) MiB apparent.*?\(([\d.]+)x live.*?"
                         r"after engine-auth compact: ([\d.]+) MiB \(([\d.]+)x\)", re.M)
        for m in pat.finditer(text):
            ratio = float(m.group(9))
            self.row(f"disk after {int(m.group(2)):,} writes ({m.group(1)}, 10k users)", None,
                     target="≤3x live data", verdict="met" if ratio <= 3 else "MISSED",
                     rps=float(m.group(4)),
                     value=f"{m.group(8)} MiB on disk / {m.group(6)} MiB live = {ratio}x "
                           f"(compact: {m.group(10)} MiB, {m.group(11)}x); {m.group(5)} flushes")

    # ------------------------------------------------------------ output

    def table(self) -> str:
        hdr = ["scenario", "req/s", "p50 ms", "p99 ms", "errors", "peak RSS MiB", "vs hello",
               "target", "result"]
        lines = []
        for r in self.rows:
            def f(k, fmt):
                v = r.get(k)
                return fmt.format(v) if v is not None else "-"
            rss = r.get("peak_rss")
            lines.append([r["scenario"], f("rps", "{:,.0f}"), f("p50", "{:.2f}"), f("p99", "{:.2f}"),
                          f("errors", "{:d}"), f"{rss / MIB:.1f}" if rss else "-",
                          f("ratio", "{:.0%}"), r.get("target", ""),
                          (r.get("verdict", "") + (f": {r['value']}" if r.get("value") else "")).strip()])
        widths = [max([len(hdr[i])] + [len(l[i]) for l in lines]) for i in range(len(hdr))]
        out = ["| " + " | ".join(h.ljust(widths[i]) for i, h in enumerate(hdr)) + " |",
               "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        for l in lines:
            out.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(l)) + " |")
        return "\n".join(out)

    def want(self, group: str) -> bool:
        return not self.args.only or group in self.args.only.split(",")

    def run(self) -> None:
        a = self.args
        t0 = time.perf_counter()
        load_start = os.getloadavg()[0]
        base = self.build_store("base", a.base_users, 8)
        if self.want("login"):
            self.measure_hash_time(base)
        if self.want("get") or self.want("refresh") or self.want("login"):
            self.api_scenarios(base, "base", base=True)
        if self.want("alg"):
            self.alg(base)
        if self.want("metrics"):
            self.metrics_cost(base)
        if self.want("flood"):
            self.login_under_flood(base)
        if self.want("flush"):
            self.flush_scenario(base)
        if self.want("10k") or self.want("startup") or self.want("arm"):
            big = self.build_store("users10k", a.idle_users, 8)
            if self.want("10k"):
                self.api_scenarios_10k(big)
            if self.want("startup"):
                self.startup_and_idle(big, a.startup_runs)
            if self.want("arm"):
                self.arm_under_qemu(big, 3)
        if self.want("binary"):
            self.binary_size()
        if a.full:
            self.scale()
        if a.space_bench:
            log("disk amplification: cargo bench --bench store_space (1M durable writes per workload)")
            p = subprocess.run(["cargo", "bench", "--locked", "--bench", "store_space"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            sys.stderr.write(p.stdout)
            self.space_rows(p.stdout)
        if a.space_log and Path(a.space_log).exists():
            self.space_rows(Path(a.space_log).read_text(errors="replace"))
        elapsed = time.perf_counter() - t0
        load_end = os.getloadavg()[0]
        print()
        print(f"engine-auth benchmark ({'full' if a.full else 'smoke' if a.smoke else 'standard'}; "
              f"wrk {self.threads} threads, {self.duration:g} s per scenario, server and hello with "
              f"{self.workers} workers; single-hash time {self.hash_seconds * 1000:.1f} ms from "
              f"{self.hash_source})")
        print(machine_line() + f"; 1-min load average {load_start:.2f} at start, {load_end:.2f} at end "
              "(anything above ~0 is other work competing with the benchmark)")
        print()
        print(self.table())
        for key, c in self.hello_cache.items():
            self.notes.append(f"hello ceiling for {key}: {c['rps']:,.0f} req/s, p50 {c['p50_us'] / 1000:.2f} ms, "
                              f"p99 {c['p99_us'] / 1000:.2f} ms, {c['errors']} errors")
        for n in self.notes:
            print(f"- {n}")
        if a.criterion_log and Path(a.criterion_log).exists():
            sys.path.insert(0, str(BENCH_DIR))
            sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
            from criterion_figures import estimates
            est = estimates(Path(a.criterion_log).read_text(errors="replace"))
            if est:
                print("\nCriterion micro-benchmarks (estimates):")
                for e in est:
                    t = e["ms"]
                    shown = f"{t:.2f} ms" if t >= 1 else f"{t * 1000:.2f} µs" if t >= 1e-3 else f"{t * 1e6:.0f} ns"
                    extra = f" ({e['per_s']:.1f}/s)" if "per_s" in e else ""
                    print(f"  {e['name']}: {shown}{extra}")
        print(f"\nbenchmark phase took {elapsed:.0f} s")
        failed = [r["scenario"] for r in self.rows if r.get("hard_errors")]
        if failed:
            print(f"\nFAILED: requests failed (not timeouts) in: {', '.join(failed)}")
        if a.json:
            Path(a.json).write_text(json.dumps({"rows": self.rows, "notes": self.notes,
                                                "machine": machine_line()}, indent=1, default=str))
        if failed:
            sys.exit(1)

    def api_scenarios_10k(self, store: dict) -> None:
        srv = self.daemon(store["dir"], tag="-10k")
        srv.start()
        c = Client(srv.port)
        token = c.login("admin", ADMIN_PASSWORD)["token"]
        ids_file = self.tmp / "ids-10k.txt"
        ids_file.write_text("\n".join(store["ids"][:: max(1, len(store["ids"]) // 1000)][:1000]) + "\n")
        args = [token, "/api/v1/auth/users"]
        r = self.measure(srv, "get.lua", args, 32)
        self.row(f"GET /users ({store['users']} users) c32", r, self.hello_cache.get("get-users"),
                 "list may be slower", "report")
        args = [token, "/api/v1/auth/user/roles/{id}", str(ids_file)]
        r = self.measure(srv, "get.lua", args, 32)
        ceil = self.hello_cache.get("get-roles") or self.ceiling("get-roles", "get.lua", args, 32)
        # The ratio only, as for the base rows (p99 has its own rows there).
        ok = r["rps"] >= 0.7 * ceil["rps"] and r["errors"] == 0
        self.row(f"GET /user/roles/{{id}} ({store['users']} users) c32", r, ceil, "≥70% of hello",
                 "met" if ok else "MISSED")
        srv.stop()


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def machine_line() -> str:
    model = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"Model name:\s*(.+)", out)
        model = m.group(1).strip() if m else "?"
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    kernel = os.uname().release
    return f"machine: {os.cpu_count()} cores (nproc), {model}, {mem} RAM, Linux {kernel}"


def main() -> None:
    global _tmp_root, _keep_tmp
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin", default=str(ROOT / "target/release/engine-auth"))
    ap.add_argument("--hello", default=str(ROOT / "target/release/examples/hello"))
    ap.add_argument("--smoke", action="store_true", help="a few seconds per scenario (CI)")
    ap.add_argument("--full", action="store_true", help="also the 100,000-user scale rows")
    ap.add_argument("--duration", type=float, help="seconds per load scenario")
    ap.add_argument("--workers", type=int, help="server workers for the daemon and hello (default: cores)")
    ap.add_argument("--wrk-threads", type=int, help="wrk threads (default: cores, at most 4)")
    ap.add_argument("--base-users", type=int, default=100)
    ap.add_argument("--idle-users", type=int, default=10_000)
    ap.add_argument("--scale-users", type=int, default=100_000)
    ap.add_argument("--startup-runs", type=int)
    ap.add_argument("--reps", type=int, help="rounds of the alg/metrics rows (default 3; 1 with --smoke)")
    ap.add_argument("--hash-ms", type=float, help="single argon2id verify time (from Criterion)")
    ap.add_argument("--parallel-hashes-per-s", type=float,
                    help="verifies/s with one per core at once (from Criterion)")
    ap.add_argument("--criterion-log", help="cargo bench output to summarise under the table")
    ap.add_argument("--space-log", help="benches/store_space.rs output, shown as table rows")
    ap.add_argument("--space-bench", action="store_true",
                    help="run benches/store_space.rs (1M writes per workload) after the load scenarios")
    ap.add_argument("--build-aarch64", action="store_true")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary stores and logs")
    ap.add_argument("--flood-connections", type=int, default=200,
                    help="wrong-login connections from one address in the flood scenario")
    ap.add_argument("--only", help="comma-separated scenario groups to run (while iterating on one fix): "
                    "get, refresh, alg, metrics, flood, flush, login, 10k, startup, arm, binary")
    a = ap.parse_args()
    if a.duration is None:
        a.duration = 3 if a.smoke else 15
    if a.startup_runs is None:
        a.startup_runs = 3 if a.smoke else 7
    _keep_tmp = a.keep
    _tmp_root = Path(tempfile.mkdtemp(prefix="engine-auth-bench."))
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    for p in (a.bin, a.hello):
        if not Path(p).exists():
            sys.exit(f"{p} missing: run bench/run.sh (it builds first)")
    Bench(a).run()


if __name__ == "__main__":
    main()
