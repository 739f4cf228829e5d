#!/usr/bin/env python3
"""Two builds of docker-credential-hub side by side, interleaved, on one private gnome-keyring:
every protocol action and `token`, so that a change can be held to "no command slower".
Usage: compare.py OLD NEW [RUNS]   (each a path to a docker-credential-hub binary)"""
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402  (its private session and mock Hub)
from harness import measure  # noqa: E402

OLD, NEW = (os.path.abspath(p) for p in sys.argv[1:3])
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 40
URL = "https://registry.compare.example:5000/v1/"


def cases(helper, tag, env, many, hub):
    store = json.dumps({"ServerURL": URL, "Username": "u", "Secret": "compare-secret"})
    return [
        ("get (found)", {"name": f"{tag} get", "cmd": [helper, "get"], "env": env, "stdin": URL}),
        ("get (not found)", {"name": f"{tag} miss", "cmd": [helper, "get"], "env": env,
                             "stdin": "https://missing.compare.example", "expect": 1}),
        ("store (same value)", {"name": f"{tag} store", "cmd": [helper, "store"], "env": env, "stdin": store}),
        ("erase (missing)", {"name": f"{tag} erase", "cmd": [helper, "erase"], "env": env,
                             "stdin": "https://missing.compare.example"}),
        ("list, 200 entries", {"name": f"{tag} list", "cmd": [helper, "list"], "env": many, "stdin": "unused"}),
        ("token (cached JWT)", {"name": f"{tag} token", "cmd": [helper, "token"], "env": hub}),
    ]


def main():
    import http.server
    import threading
    env, pids, home = bench.private_session()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bench.MockHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rows = {}
        for helper, tag in ((OLD, "old"), (NEW, "new")):
            ours = dict(env, DOCKER_CREDENTIAL_HUB_BACKEND="secret-service",
                        DOCKER_CREDENTIAL_HUB_SERVICE=f"compare-{tag}")
            many = dict(ours, DOCKER_CREDENTIAL_HUB_SERVICE=f"compare-{tag}-200")
            hub = dict(ours, DOCKER_HUB_API_URL=f"http://127.0.0.1:{server.server_address[1]}")
            bench.sh([helper, "store"], ours, json.dumps({"ServerURL": URL, "Username": "u", "Secret": "compare-secret"}))
            for i in range(200):
                bench.sh([helper, "store"], many, json.dumps(
                    {"ServerURL": f"https://r{i:03}.compare.example", "Username": f"u{i}", "Secret": "s"}))
            bench.sh([helper, "login", "--username", "u", "--password-stdin"], hub, "pw\n")
            for label, c in cases(helper, tag, ours, many, hub):
                rows.setdefault(label, []).append(c)
        print(f"old: {OLD}\nnew: {NEW}\n{RUNS} interleaved rounds (old, new, new, old, ...); medians\n")
        print("| command | old wall ms | new wall ms | new - old | old CPU ms | new CPU ms |")
        print("|---|---:|---:|---:|---:|---:|")
        worst = 0.0
        for label, (old, new) in rows.items():
            samples = {"old": [], "new": []}
            for _ in range(3):
                measure(old), measure(new)
            for i in range(RUNS):
                pair = [("old", old), ("new", new)]
                for tag, c in (pair if i % 2 == 0 else reversed(pair)):
                    samples[tag].append(measure(c))
            med = {t: (statistics.median(s[0] for s in v) * 1000, statistics.median(s[1] for s in v) * 1000)
                   for t, v in samples.items()}
            delta = med["new"][0] - med["old"][0]
            worst = max(worst, delta)
            print(f"| {label} | {med['old'][0]:.2f} | {med['new'][0]:.2f} | {delta:+.2f} | {med['old'][1]:.2f} | {med['new'][1]:.2f} |")
        print(f"\nlargest slowdown: {worst:+.2f} ms")
    finally:
        server.shutdown()
        bench.stop_session(pids, home)


if __name__ == "__main__":
    main()
