#!/usr/bin/env python3
"""Write the functions a `get` runs to scripts/hot-functions.txt, which the release link
(scripts/link-hot-first) lays out together. Runs an unstripped release build of the helper
under callgrind on a private gnome-keyring: a `get` that finds its entry and one that does not.
Usage: hot_functions.py PATH/TO/unstripped/docker-credential-hub (bench/hot-functions.sh)."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import bench  # noqa: E402

LIST = os.path.join(os.path.dirname(__file__), "..", "scripts", "hot-functions.txt")


def functions_run(helper, env, stdin):
    """Mangled names of every function callgrind saw run."""
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out.name}",
                        helper, "get"], input=stdin, env=env, capture_output=True, text=True)
        text = open(out.name).read()
    # "fn=(12) name" names a function the first time callgrind mentions it (also as "cfn=").
    return set(re.findall(r"^c?fn=\(\d+\) (.+)$", text, re.M))


def main():
    helper = os.path.abspath(sys.argv[1])
    bench.HELPER = helper
    env, pids, home = bench.private_session()
    ours = dict(env, DOCKER_CREDENTIAL_HUB_BACKEND="secret-service")
    try:
        bench.store_ours(ours, bench.URL, "bench", bench.SECRET)
        # Three of each: the union, so that a path one run happened to skip is still listed.
        names = set()
        for _ in range(3):
            names |= functions_run(helper, ours, bench.URL)
            names |= functions_run(helper, ours, "https://missing.example/v1/")
    finally:
        bench.stop_session(pids, home)
    # Unnamed code ("0x4010a0") and valgrind's "(below main)" cannot be ordered; "'2" marks
    # recursion. The link matches names without hashes (see scripts/link-hot-first).
    mangled = sorted(n.split("'")[0] for n in names if not n.startswith(("0x", "(")))
    demangled = subprocess.run(["c++filt"], input="\n".join(mangled), capture_output=True, text=True,
                               check=True).stdout.splitlines()
    hot = sorted({re.sub(r"::h[0-9a-f]{16}$", "", re.sub(r"\[[0-9a-f]+\]", "", d)) for d in demangled})
    if len(hot) < 50:
        sys.exit(f"hot-functions: only {len(hot)} functions seen; is the binary stripped?")
    with open(LIST, "w") as f:
        f.write("\n".join(hot) + "\n")
    print(f"hot-functions: {len(hot)} functions written to scripts/hot-functions.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
