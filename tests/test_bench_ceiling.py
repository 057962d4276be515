#!/usr/bin/env python3
"""test_bench_ceiling.py — bench/always_ceiling, the durable-append yardstick
that bench/vs-redis-sale runs beside invcored and Redis: it answers each
well-framed RESP request with +PONG once its record is fdatasynced, closes a
connection whose framing is bad and keeps serving the others, and on SIGTERM
reports what it answered and removes its journal file.

Run by `make client-test` (ALWAYS_CEILING: the binary), on loopback, in a
temporary directory; every wait is bounded.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client_checks import expect, run_checks, stop_process  # noqa: E402

START_TIMEOUT_S = 10
REPLY_TIMEOUT_S = 10
PONG = b"+PONG\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def read_exactly(c, n):
    """n bytes, or what came before the peer closed."""
    got = b""
    while len(got) < n:
        part = c.recv(n - len(got))
        if not part:
            break
        got += part
    return got


class Ceiling:
    def __init__(self):
        self.proc = None
        self.dir = None
        self.port = None
        self.answered = 0  # requests the checks sent and saw answered

    def start(self):
        binary = os.environ.get("ALWAYS_CEILING", "build/bench/always_ceiling")
        self.dir = tempfile.mkdtemp(prefix="invcore-ceiling-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--dir", self.dir, "--flusher", "thread"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # until it accepts (or died, or the bound passed)
            try:
                connect(self.port).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("always_ceiling did not start")
                time.sleep(0.05)

    def cleanup(self):
        stop_process(self.proc)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def check_pipelined_requests_are_answered_in_order(f):
    c = connect(f.port)
    req = b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$12\r\n" + b"v" * 12 + b"\r\n"
    stream = req * 50
    # split inside headers and bodies: the server must wait for the rest
    for at in range(0, len(stream), 7):
        c.sendall(stream[at:at + 7])
    got = read_exactly(c, len(PONG) * 100)
    expect(got == PONG * 100, "100 replies of +PONG, got %r..." % got[:40])
    f.answered += 100
    c.close()


def check_bad_framing_closes_only_that_connection(f):
    for bad in (b"garbage\r\n", b"*1\r\n$99999999999\r\n", b"*0\r\n", b"*-1\r\n",
                b"*1\r\n$4\r\nPINGxx", b"*1025\r\n", b"*1\r\n:5\r\n", b"*1\r\n$1\n\r1\r\n"):
        c = connect(f.port)
        c.sendall(bad)
        expect(c.recv(64) == b"", "%r: the connection is closed without a reply" % bad)
        c.close()
    c = connect(f.port)
    c.sendall(b"*1\r\n$4\r\nPING\r\n")
    expect(read_exactly(c, len(PONG)) == PONG, "a new connection is still served")
    f.answered += 1
    c.close()


def check_sigterm_reports_and_removes_its_file(f):
    expect(os.listdir(f.dir) == ["always_ceiling.journal"], "its journal is in the dir")
    f.proc.terminate()
    out, err = f.proc.communicate(timeout=START_TIMEOUT_S)
    expect(f.proc.returncode == 0, "exit 0 on SIGTERM, got %s: %r" % (f.proc.returncode, err))
    line = out.decode()
    expect(line.startswith("always_ceiling: %d requests," % f.answered),
           "the summary counts the %d requests answered: %r" % (f.answered, line))
    expect(os.listdir(f.dir) == [], "the journal file is removed")


CHECKS = [
    ("pipelined_requests_are_answered_in_order", check_pipelined_requests_are_answered_in_order),
    ("bad_framing_closes_only_that_connection", check_bad_framing_closes_only_that_connection),
    ("sigterm_reports_and_removes_its_file", check_sigterm_reports_and_removes_its_file),
]


if __name__ == "__main__":
    sys.exit(run_checks(Ceiling(), CHECKS))
