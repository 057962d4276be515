"""client_checks.py — what the client test scripts (tests/test_client_*.py)
share: the check runner, expect() and stopping a process by its pid.

Not a test itself: `make client-test` runs the scripts, and each imports this
module from its own directory (Python puts the directory of the script it
runs first on sys.path). A script defines its checks as (name, function)
pairs and a fixture with start() and cleanup(), and ends with
`sys.exit(run_checks(fixture, CHECKS))`.

The output is the contract that `make test` reads: a line `PASS name` or
`FAIL name: Kind: message` (its traceback on stderr) per check, then a
closing line `N passed, M failed`; the exit status is 1 when a check failed.
"""
import os
import signal
import subprocess
import traceback

STOP_TIMEOUT_S = 10


def expect(cond, what):
    """Raises AssertionError(what) unless cond: a check's failure."""
    if not cond:
        raise AssertionError(what)


def stop_process(proc, timeout=STOP_TIMEOUT_S):
    """SIGTERM to a process this script started (by its pid), SIGKILL when it
    has not exited within timeout seconds. Nothing for None or an exited one."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()


def run_checks(fixture, checks):
    """Starts fixture, runs each check in order with fixture as its argument,
    printing PASS or FAIL (with the traceback) for it, cleans the fixture up
    whatever happened, prints `N passed, M failed` and returns the exit status:
    1 when a check failed, else 0. A fixture that does not start raises."""
    passed = failed = 0
    try:
        fixture.start()
        for name, fn in checks:
            try:
                fn(fixture)
                ok, why = True, ""
            except Exception as e:  # a check's failure, whatever its kind
                ok, why = False, "%s: %s" % (type(e).__name__, e)
                traceback.print_exc()
            if ok:
                passed += 1
                print("PASS %s" % name)
            else:
                failed += 1
                print("FAIL %s: %s" % (name, why))
    finally:
        fixture.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
