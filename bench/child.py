"""Run a child process and report its own peak RSS (not the maximum over all children)."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Sequence


def run_measured(args: Sequence[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run ``args``; return (stderr, wall seconds, peak RSS in MB of that child alone)."""
    stderr, elapsed, usage = run_child(args, env)
    return stderr, elapsed, usage.ru_maxrss / 1024


def run_child(
    args: Sequence[str], env: dict[str, str]
) -> tuple[str, float, resource.struct_rusage]:
    """Run ``args``; return (stderr, wall seconds, its ``wait4`` resource usage: the CPU of
    the child and of the processes it waited for, its own peak RSS)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[2:4]} failed: {stderr[-2000:]}")
    return stderr, elapsed, usage
