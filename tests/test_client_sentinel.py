#!/usr/bin/python3
"""test_client_sentinel.py — redis-py's Sentinel client (Debian python3-redis,
default options) follows an invcored cluster's failover (issue #16,
docs/REPLICATION.md).

Starts one etcd member and two invcored nodes (--cluster) on free loopback
ports, asks redis.sentinel.Sentinel with both nodes as its "sentinels" for
the master, writes through it, SIGKILLs the leader, and writes on through the
same Sentinel client until the standby has taken over: every write the
client saw succeed is in the new leader's state. Processes are stopped by the
pids this script started. Prints `N passed, M failed`; exit status non-zero
when a check failed.

Run with Debian's interpreter: /usr/bin/python3 tests/test_client_sentinel.py
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import redis
import redis.sentinel

sys.dont_write_bytecode = True  # no tests/__pycache__ from the import below
from client_checks import expect, run_checks, stop_process  # noqa: E402

CLUSTER = "shop"
START_TIMEOUT_S = 20
FAILOVER_TIMEOUT_S = 30
WRITES_BEFORE = 50
WRITES_AFTER = 50


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    """One etcd member and two invcored nodes in a temporary directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="invcored-sentinel-")
        self.etcd = None
        self.nodes = []  # [proc, port]

    def start(self):
        client_port, peer_port = free_ports(2)
        self.endpoint = "http://127.0.0.1:%d" % client_port
        peer = "http://127.0.0.1:%d" % peer_port
        etcd_bin = os.environ.get("ETCD", "/usr/bin/etcd")
        with open(os.path.join(self.dir, "etcd.log"), "wb") as log:
            self.etcd = subprocess.Popen(
                [etcd_bin, "--name", "m0", "--data-dir", os.path.join(self.dir, "etcd"),
                 "--listen-client-urls", self.endpoint, "--advertise-client-urls",
                 self.endpoint, "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
                 peer, "--initial-cluster", "m0=" + peer, "--initial-cluster-token",
                 os.path.basename(self.dir)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        for i in range(2):
            self.nodes.append([None, free_ports(1)[0]])
            self.start_node(i)

    def start_node(self, i):
        binary = os.environ.get("INVCORED", "build/invcored")
        port = self.nodes[i][1]
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--http-port", "0",
                "--data-dir", os.path.join(self.dir, "n%d" % i), "--fsync", "always",
                "--cluster", CLUSTER, "--etcd", self.endpoint,
                "--advertise", "127.0.0.1:%d" % port]
        with open(os.path.join(self.dir, "n%d.log" % i), "ab") as log:
            self.nodes[i][0] = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=log)

    def role(self, i):
        try:
            r = redis.Redis(host="127.0.0.1", port=self.nodes[i][1], socket_timeout=2)
            return r.execute_command("ROLE")[0]
        except redis.RedisError:
            return None

    def wait_leader(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for i in range(2):
                if self.role(i) in (b"master", "master"):
                    return i
            time.sleep(0.05)
        raise RuntimeError("no leader; logs in " + self.dir)

    def kill(self, i):
        os.kill(self.nodes[i][0].pid, signal.SIGKILL)
        self.nodes[i][0].wait()

    def cleanup(self):
        for proc, _ in self.nodes:
            stop_process(proc)
        stop_process(self.etcd)
        shutil.rmtree(self.dir, ignore_errors=True)


def write_until_done(master, item, n):
    """n decrements of item through the Sentinel client, retrying a write
    whose connection failed or whose node turned read-only (a failover):
    the count of writes it saw acknowledged."""
    acked = 0
    deadline = time.monotonic() + FAILOVER_TIMEOUT_S
    while acked < n:
        try:
            master.execute_command("LEVEL.ADJUST", item, 1, -1)
            acked += 1
        except (redis.ConnectionError, redis.ReadOnlyError, redis.TimeoutError):
            expect(time.monotonic() < deadline, "no master within %d s" % FAILOVER_TIMEOUT_S)
            time.sleep(0.05)
    return acked


def check_sentinel_follows_a_failover(cl):
    """Sentinel('GET-MASTER') finds the leader; after it is killed the same
    client finds the new one, and every acknowledged write is there."""
    leader = cl.wait_leader()
    sentinel = redis.sentinel.Sentinel(
        [("127.0.0.1", cl.nodes[0][1]), ("127.0.0.1", cl.nodes[1][1])], socket_timeout=2)
    addr = sentinel.discover_master(CLUSTER)
    expect(addr == ("127.0.0.1", cl.nodes[leader][1]), "discover_master: %r" % (addr,))
    master = sentinel.master_for(CLUSTER, socket_timeout=2)
    master.execute_command("LOC.SET", 1, "name", "main")
    master.execute_command("ITEM.SET", 5, "sku", "tee")
    master.execute_command("LEVEL.SET", 5, 1, 1000)
    acked = write_until_done(master, 5, WRITES_BEFORE)
    cl.kill(leader)
    acked += write_until_done(master, 5, WRITES_AFTER)
    now = sentinel.discover_master(CLUSTER)
    expect(now == ("127.0.0.1", cl.nodes[1 - leader][1]), "the new master: %r" % (now,))
    got = master.execute_command("LEVEL.GET", 5, 1)
    expect(int(got[0]) <= 1000 - acked,
           "available %s after %d acknowledged decrements" % (got[0], acked))


def check_replica_reads_and_refuses_writes(cl):
    """The standby says it is a slave; a write there is redis-py's
    ReadOnlyError."""
    leader = cl.wait_leader()
    standby = redis.Redis(host="127.0.0.1", port=cl.nodes[1 - leader][1], socket_timeout=2)
    try:
        standby.execute_command("LEVEL.ADJUST", 5, 1, -1)
        expect(False, "a write to the standby was taken")
    except redis.ReadOnlyError:
        pass
    role = standby.execute_command("ROLE")
    expect(role[0] in (b"slave", "slave"), "ROLE: %r" % (role,))


CHECKS = [  # in this order: the second one kills the leader
    ("replica_refuses_writes", check_replica_reads_and_refuses_writes),
    ("sentinel_follows_a_failover", check_sentinel_follows_a_failover),
]


def main():
    return run_checks(Cluster(), CHECKS)


if __name__ == "__main__":
    sys.exit(main())
