#!/usr/bin/env python3
"""The performance benchmark: every figure measured interleaved against its anchor
in one run, on a private gnome-keyring. Usage: bench.py PATH/TO/docker-credential-hub [RUNS]"""
import base64
import http.server
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import measure  # noqa: E402

# Set from the command line (see the end of the file); compare.py imports this module.
HELPER = None
# 42: whole cycles of the six orders of three commands (see `interleave`).
RUNS = 42
KEYRING = []  # (process, log path) of the private gnome-keyring-daemon
WARMUP = 5
URL = "https://registry.bench.example:5000/v1/"
SECRET = "bench-secret-0123456789abcdef"


def private_session():
    home = tempfile.mkdtemp(prefix="dch-bench-")
    run_dir = os.path.join(home, "run")
    os.mkdir(run_dir, 0o700)
    env = {"PATH": os.environ["PATH"], "HOME": home, "XDG_RUNTIME_DIR": run_dir, "LANG": "C.UTF-8"}
    out = subprocess.run(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
                         env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    env["DBUS_SESSION_BUS_ADDRESS"] = out[0].strip()
    pids = [int(out[1])]
    # In the foreground, as our child, logging to a file: if the daemon dies mid-run the
    # benchmark says so (with its last words) instead of timing a re-activated, locked one.
    log = open(os.path.join(home, "gnome-keyring.log"), "w")
    keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, env=env)
    keyring.stdin.write(b"bench")
    keyring.stdin.close()
    pids.append(keyring.pid)
    KEYRING.append((keyring, os.path.join(home, "gnome-keyring.log")))
    for _ in range(100):
        if subprocess.run(["secret-tool", "search", "bench", "probe"], env=env,
                          capture_output=True).returncode in (0, 1):
            break
        time.sleep(0.05)
    return env, pids, home


def stop_session(pids, home):
    """Stop what private_session started and remove its files."""
    for pid in pids:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass
    subprocess.run(["pkill", "-f", f"gnome-keyring-daemon.*{home}"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def jwt(exp):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'RS256', 'typ': 'JWT'})}.{enc({'exp': exp, 'sub': 'bench', 'username': 'bench'})}.c2ln"


class MockHub(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"token": jwt(int(time.time()) + 3600), "access_token": jwt(int(time.time()) + 3600)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def sh(cmd, env, stdin="", check=True):
    return subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, check=check)


def store_ours(env, url, user, secret):
    sh([HELPER, "store"], env, json.dumps({"ServerURL": url, "Username": user, "Secret": secret}))


def store_gohelper(env, url, user, secret):
    sh(["docker-credential-secretservice", "store"], env,
       json.dumps({"ServerURL": url, "Username": user, "Secret": secret}))


def case(name, cmd, env, stdin="", expect=0):
    return {"name": name, "cmd": cmd, "env": env, "stdin": stdin, "expect": expect}


def check_keyring():
    for proc, log in KEYRING:
        if proc.poll() is not None:
            sys.exit(f"bench: gnome-keyring-daemon exited ({proc.returncode}) during the run; its log:\n"
                     + open(log).read()[-2000:])


def interleave(cases):
    check_keyring()
    for _ in range(WARMUP):
        for c in cases:
            measure(c)
    samples = {c["name"]: [] for c in cases}
    # Interleaved, and each round takes the next of all the orders of the commands: over the
    # cycle, every command runs first and right after every other equally often, so what
    # one command leaves behind (the daemon tearing down its session, busy CPUs) does not
    # always land on the same other command.
    orders = list(itertools.permutations(cases))
    for i in range(RUNS):
        for c in orders[i % len(orders)]:
            samples[c["name"]].append(measure(c))
    check_keyring()
    return {n: {"wall": statistics.median(r[0] for r in s) * 1000,
                "cpu": statistics.median(r[1] for r in s) * 1000,
                "rss": peak_rss(next(c for c in cases if c["name"] == n))} for n, s in samples.items()}


def peak_rss(c):
    """Peak RSS in KiB over 5 runs. wait4's ru_maxrss from this process is useless: a child
    spawned from Python inherits Python's high-water mark, so GNU time, a small parent,
    measures instead."""
    peak = 0
    for _ in range(5):
        env = dict(os.environ)
        env.update(c["env"])
        out = subprocess.run(["/usr/bin/time", "-f", "%M"] + c["cmd"], input=c["stdin"], env=env,
                             capture_output=True, text=True)
        peak = max(peak, int(out.stderr.strip().splitlines()[-1]))
    return peak


def main():
    env, pids, home = private_session()
    ours = dict(env, DOCKER_CREDENTIAL_HUB_BACKEND="secret-service")
    many = dict(ours, DOCKER_CREDENTIAL_HUB_SERVICE="bench-list-200")
    ku = dict(env, DOCKER_CREDENTIAL_HUB_BACKEND="keyutils",
              DOCKER_CREDENTIAL_HUB_SERVICE=f"bench-keyutils-{os.getpid()}")
    ku.pop("DBUS_SESSION_BUS_ADDRESS")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MockHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hub = dict(ours, DOCKER_HUB_API_URL=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        store_ours(ours, URL, "bench", SECRET)
        store_gohelper(env, URL, "bench", SECRET)
        for i in range(200):
            u = f"https://registry-{i:03}.bench.example/v1/"
            store_ours(many, u, f"user{i}", SECRET)
            store_gohelper(env, u, f"user{i}", SECRET)
        store_ours(ku, URL, "bench", SECRET)
        login = sh([HELPER, "login", "--username", "bench", "--password-stdin"], hub, "bench-password\n", check=False)
        token_ok = login.returncode == 0
        if not token_ok:
            print(f"bench: `login` against the loopback Hub failed, token row skipped: {login.stderr.strip()}", file=sys.stderr)

        get = case("get", [HELPER, "get"], ours, URL)
        rows = []
        r = interleave([get, case("secretservice get", ["docker-credential-secretservice", "get"], env, URL),
                        case("secret-tool lookup", ["secret-tool", "lookup", "server", URL], env)])
        rows += [("1. get (found)", r["get"], "docker-credential-secretservice get", r["secretservice get"], 0.3),
                 ("1. get (found)", r["get"], "secret-tool lookup", r["secret-tool lookup"], 0.5)]
        r = interleave([case("get missing", [HELPER, "get"], ours, "https://missing.bench.example/v1/", 1), get])
        rows.append(("2. get (not found)", r["get missing"], "our get (found)", r["get"], 1.0))
        r = interleave([case("list 200", [HELPER, "list"], many, "unused"),
                        case("secretservice list", ["docker-credential-secretservice", "list"], env, "unused"), get])
        rows += [("3. list, 200 entries", r["list 200"], "docker-credential-secretservice list", r["secretservice list"], 0.5),
                 ("3. list, 200 entries", r["list 200"], "our get (found)", r["get"], 5.0)]
        if token_ok:
            r = interleave([case("token", [HELPER, "token"], hub), get])
            rows.append(("4. token (cached JWT)", r["token"], "our get (found)", r["get"], 1.3))
        r = interleave([case("keyutils get", [HELPER, "get"], ku, URL), get])
        rows.append(("5. get on keyutils", r["keyutils get"], "our get on Secret Service", r["get"], 0.2))
        report(rows, r["get"]["rss"])
        return all(m["wall"] <= anchor["wall"] * target for _, m, _, anchor, target in rows)
    finally:
        server.shutdown()
        stop_session(pids, home)


def report(rows, get_rss):
    size = os.path.getsize(HELPER)
    print(f"docker-credential-hub benchmark, {time.strftime('%Y-%m-%d')}, {platform.machine()} "
          f"{os.cpu_count()} cores, {RUNS} interleaved runs per command after {WARMUP} warm-up rounds; medians")
    print()
    print("| measurement | wall ms | CPU ms | peak RSS KiB | anchor | anchor wall ms | ratio | target | |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---|")
    for name, m, anchor_name, a, target in rows:
        ratio = m["wall"] / a["wall"]
        ok = "PASS" if ratio <= target else "FAIL"
        print(f"| {name} | {m['wall']:.2f} | {m['cpu']:.2f} | {m['rss']} | {anchor_name} | {a['wall']:.2f} | {ratio:.2f}x | <= {target}x | {ok} |")
    print(f"| 6. release binary size | {size / 1048576:.2f} MiB | | | | | | <= 6 MiB | {'PASS' if size <= 6 * 1048576 else 'FAIL'} |")
    print(f"| 6. peak RSS of get | {get_rss} KiB | | | | | | <= 8192 KiB | {'PASS' if get_rss <= 8192 else 'FAIL'} |")


if __name__ == "__main__":
    HELPER = os.path.abspath(sys.argv[1])
    RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else RUNS
    sys.exit(0 if main() else 1)
