#!/usr/bin/env python3
"""Interleaved A/B benchmark of short-lived commands: median wall time, CPU time and peak RSS.

hyperfine (Debian 12 ships 1.15) runs all of A, then all of B, and cannot feed stdin from a
file; docker feeds the helper on stdin and machine noise drifts, so this harness runs
A B A B ... with each command's stdin given, and reads CPU time and peak RSS of each child
from wait4(2).

bench.py imports `measure`; a case is {"name", "cmd": [...], "stdin", "env": {...}, "expect"}.
"""
import os
import subprocess
import sys
import time


def measure(case):
    """Run the case once, returning its wall time, CPU time (from wait4) and ru_maxrss."""
    env = dict(os.environ)
    env.update(case.get("env", {}))
    data = case.get("stdin", "").encode()
    r, w = os.pipe()
    os.write(w, data)  # small inputs fit in the pipe buffer
    os.close(w)
    devnull = os.open(os.devnull, os.O_WRONLY)
    outr, outw = os.pipe()
    start = time.perf_counter()
    pid = os.posix_spawnp(case["cmd"][0], case["cmd"], env,
                          file_actions=[(os.POSIX_SPAWN_DUP2, r, 0),
                                        (os.POSIX_SPAWN_DUP2, outw, 1),
                                        (os.POSIX_SPAWN_DUP2, devnull, 2)])
    os.close(r)
    os.close(outw)
    os.close(devnull)
    chunks = []
    while True:
        chunk = os.read(outr, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(outr)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    expect = case.get("expect", 0)
    if code != expect:
        again = subprocess.run(case["cmd"], input=data, env=env, capture_output=True)
        sys.exit(f"{case['name']}: exit {code}, expected {expect}: {b''.join(chunks)[:200]!r}; "
                 f"run again: exit {again.returncode}, stderr {again.stderr[:300]!r}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss
