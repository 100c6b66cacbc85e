"""Bounded waits for the emulator world's tests (localstack/test_*.py).

Why this exists (issue 37): the tests start processes (gcp_emu.py, dnsplane.py,
moto) and watch states that take time to reach. A fixed sleep, or a loop of a
fixed number of short sleeps, is a guess at how long that takes, and on a
cold, loaded machine the guess is wrong: dnsplane took over 2 s to start, the
first DNS question timed out and the test failed. Here every wait is a
condition polled until a monotonic deadline (generous, as being slow is not
being wrong), any exception from the check counts as "not yet", and a wait
that fails says what it waited for, for how long, what it saw last and, for a
process, whether it is still running and the end of its log.

    proc, log = start("gcp_emu", [sys.executable, "gcp_emu.py"], env)
    wait_until("gcp_emu.py to answer /emu/health", healthy,
               timeout=PROCESS_START, proc=proc, log=log)

Standard library only: each of the world's Python environments imports it.
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest

PROCESS_START = 180.0  # s: a process started cold on a loaded machine (moto took 61 s beside a build and eight busy loops)
CONDITION = 30.0       # s: a state the emulators reach in about a second
LOG_TAIL = 30          # lines of a process's log quoted when a wait fails


# The logs start() made, removed by main() when every test passed.
_LOGS = []


class WaitFailed(AssertionError):
    """A wait ran out of time, or its process exited before it was over."""


def start(name, argv, env=None):
    """Starts `argv` with its stdout and stderr in a log file of its own,
    kept after a test that failed (its path is in every failed wait's
    message) and removed by main() when all passed.
    Returns (process, log path)."""
    fd, path = tempfile.mkstemp(prefix=f"drctl-test-{name}-", suffix=".log")
    _LOGS.append(path)
    with os.fdopen(fd, "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    return proc, path


def stop(proc, timeout=10.0):
    """Terminates `proc` and reaps it (killed if it does not end in `timeout`)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def tail(path, lines=LOG_TAIL):
    """The last `lines` lines of a log file, or why they cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(cannot read it: {e})"
    kept = text.splitlines()[-lines:]
    return "\n".join("    | " + line for line in kept) if kept else "    (empty)"


def wait_until(what, check, timeout=CONDITION, interval=0.05, proc=None, log=None):
    """Calls `check()` until it returns a truthy value, and returns that value.

    An exception from `check` (a timeout, a refused connection, an HTTP error,
    a failed assertion...) counts as "not yet". Gives up with WaitFailed when
    `timeout` seconds (monotonic) have passed, or at once when `proc` (a
    Popen) exits first. `what` names the awaited condition ("dnsplane to
    answer DNS"), or is a callable giving that name when the wait fails (to
    include what was seen along the way). `log` is the file `proc` writes to.
    """
    began = time.monotonic()
    deadline = began + timeout
    tries, last = 0, "nothing (never called)"
    while True:
        tries += 1
        try:
            value = check()
        except Exception as e:  # noqa: BLE001 - any failure of the check is "not yet"
            last = f"raised {type(e).__name__}: {e}"
        else:
            if value:
                return value
            last = f"returned {value!r}"
        exited = proc is not None and proc.poll() is not None
        now = time.monotonic()
        if exited or now >= deadline:
            raise WaitFailed(_failure(what, now - began, tries, last, exited, proc, log))
        time.sleep(min(interval, max(0.0, deadline - now)))


def _failure(what, waited, tries, last, exited, proc, log):
    name = what() if callable(what) else what
    why = "its process exited first" if exited else "timed out"
    lines = [f"waited {waited:.1f} s ({tries} tries) for {name}: {why}; the last check {last}"]
    if proc is not None:
        code = proc.poll()
        state = "still running" if code is None else f"exited with code {code}"
        lines.append(f"process {proc.pid} ({' '.join(map(str, proc.args))}): {state}")
    if log is not None:
        lines.append(f"its log, {log} (last {LOG_TAIL} lines):\n{tail(log)}")
    return "\n".join(lines)


def main(verbosity=1):
    """unittest.main for the world's test files: the logs of the processes
    the tests started are kept when a test failed (for the failure's
    message that names them) and removed when every test passed, so that
    runs of the suite leave nothing behind."""
    program = unittest.main(verbosity=verbosity, exit=False)
    passed = program.result.wasSuccessful()
    if passed:
        for path in _LOGS:
            try:
                os.unlink(path)
            except OSError:
                pass
    sys.exit(0 if passed else 1)
