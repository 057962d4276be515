#!/usr/bin/python3
"""test_client_redispy.py — redis-py (Debian python3-redis) with its default
options against a real invcored.

Starts build/invcored (or $INVCORED) on a free loopback port with a temporary
data dir and --fsync always, runs every check against it, stops it by its pid
and prints a closing line `N passed, M failed`; the exit status is non-zero
when a check failed.

Run with Debian's interpreter: /usr/bin/python3 tests/test_client_redispy.py
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis

sys.dont_write_bytecode = True  # no tests/__pycache__ from the import below
from client_checks import expect, run_checks, stop_process  # noqa: E402

START_TIMEOUT_S = 10
HOLD_TTL_MS = 60000


class Server:
    """One invcored process, started and stopped by its pid."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="invcored-redispy-")
        self.log = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None

    def start(self):
        binary = os.environ.get("INVCORED", "build/invcored")
        args = [binary, "--bind", "127.0.0.1", "--port", "0", "--data-dir",
                os.path.join(self.dir, "data"), "--fsync", "always"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        marker = "listening on 127.0.0.1:"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with open(self.log, "r", errors="replace") as f:
                text = f.read()
            at = text.find(marker)
            if at >= 0:
                digits = text[at + len(marker):].split()[0].rstrip(",;")
                self.port = int("".join(ch for ch in digits if ch.isdigit()))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError("invcored did not start; log:\n" + open(self.log).read())

    def stop(self):
        stop_process(self.proc)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port,
                           socket_timeout=5, **kw)


def seed(r, item, stock):
    """Item `item` with `stock` units at location 1."""
    r.execute_command("LOC.SET", 1, "name", "Main")
    r.execute_command("ITEM.SET", item, "sku", "SKU-%d" % item)
    r.execute_command("LEVEL.SET", item, 1, stock)


def level(r, item):
    """[available, reserved] of item at location 1."""
    return r.execute_command("LEVEL.GET", item, 1)[:2]


def transaction(r, *commands):
    """Runs commands through r.pipeline(): redis-py's default, a MULTI/EXEC
    transaction sent in one write. Returns execute()'s result."""
    p = r.pipeline()
    for c in commands:
        p.execute_command(*c)
    return p.execute()


def expect_response_error(fn, what):
    """fn() must raise redis.ResponseError; returns its message."""
    try:
        fn()
    except redis.ResponseError as e:
        return str(e)
    raise AssertionError("no error: " + what)


# ---- checks: each gets a fresh client on the shared server -----------------

def check_pipeline_applies(srv):
    """Default pipeline() is a MULTI/EXEC transaction: it succeeds and applies."""
    r = srv.client()
    seed(r, 10, 5)
    seed(r, 11, 5)
    res = transaction(r, ("LEVEL.ADJUST", 10, 1, -1, "FLOOR", 0),
                      ("LEVEL.ADJUST", 11, 1, -2, "FLOOR", 0),
                      ("LEVEL.GET", 10, 1))
    expect(len(res) == 3, "3 replies, got %r" % (res,))
    expect(res[0][:2] == [4, 0] and res[1][:2] == [3, 0], "replies %r" % (res,))
    expect(res[2][:2] == [4, 0], "LEVEL.GET inside sees the adjust: %r" % (res,))
    expect(level(r, 10) == [4, 0] and level(r, 11) == [3, 0], "levels after EXEC")


def check_pipeline_failing_last_line_changes_nothing(srv):
    """A pipeline whose last line fails raises and changes nothing."""
    r = srv.client()
    seed(r, 20, 5)
    seed(r, 21, 5)
    msg = expect_response_error(lambda: transaction(
        r, ("LEVEL.ADJUST", 20, 1, -1, "FLOOR", 0),
        ("HOLD.CREATE", "py-hold", HOLD_TTL_MS, 21, 1, 2),
        ("LEVEL.ADJUST", 21, 1, -10, "FLOOR", 0)), "the pipeline")
    expect(msg.startswith("INSUFFICIENT EXEC line 3 (LEVEL.ADJUST)"), msg)
    expect("nothing was applied" in msg, msg)
    expect(level(r, 20) == [5, 0] and level(r, 21) == [5, 0], "levels unchanged")
    msg = expect_response_error(lambda: r.execute_command("HOLD.GET", "py-hold"),
                                "the hold exists")
    expect(msg.startswith("NOTFOUND"), msg)
    expect(r.ping(), "the connection still serves")


def check_pipeline_bad_line_raises_its_error(srv):
    """A line refused when queued: redis-py raises that line's error."""
    r = srv.client()
    seed(r, 30, 5)
    msg = expect_response_error(lambda: transaction(
        r, ("LEVEL.ADJUST", 30, 1, -1), ("LEVEL.ADJUST", 30, 1, "abc")),
        "the pipeline")
    expect(msg.startswith("Command # 2") and "INVALID" in msg, msg)
    expect(level(r, 30) == [5, 0], "level unchanged")


def check_client_name(srv):
    """redis.Redis(client_name=...) connects; CLIENT GETNAME returns it."""
    r = srv.client(client_name="x")
    got = r.client_getname()
    expect(got in ("x", b"x"), "CLIENT GETNAME: %r" % (got,))


def check_auth_default(srv):
    """username='default' with any password connects without --requirepass."""
    r = srv.client(username="default", password="anything")
    expect(r.ping(), "PING after AUTH default")


def check_scan_iter(srv):
    """scan_iter() lists the levels as item:loc."""
    r = srv.client()
    seed(r, 40, 1)
    seed(r, 41, 2)
    keys = {k.decode() if isinstance(k, bytes) else k for k in r.scan_iter()}
    expect({"40:1", "41:1"} <= keys, "scan_iter: %r" % (sorted(keys),))


CHECKS = [
    ("pipeline_applies", check_pipeline_applies),
    ("pipeline_failing_last_line", check_pipeline_failing_last_line_changes_nothing),
    ("pipeline_bad_line", check_pipeline_bad_line_raises_its_error),
    ("client_name", check_client_name),
    ("auth_default", check_auth_default),
    ("scan_iter", check_scan_iter),
]


def main():
    return run_checks(Server(), CHECKS)


if __name__ == "__main__":
    sys.exit(main())
