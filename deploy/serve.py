"""Serve a lecture hall: N replicas of the app behind one nginx with session affinity.

    python deploy/serve.py --replicas 2 --port 8080      # what `make serve REPLICAS=2 PORT=8080` runs

Each replica is `streamlit run streamlit_app.py` on its own loopback port (PORT+1, PORT+2, ...); one nginx
on PORT sends every browser to one replica by an affinity cookie (deploy/nginx.conf.template says why).
nginx runs as the current user, in the foreground, with its pid, temp files and cache under --workdir.
A replica that dies is started again; Ctrl-C or SIGTERM stops nginx and every replica.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
START_TIMEOUT = 90  # seconds for a replica to answer its health check on a busy machine


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a container's CPU quota (cgroup v2)."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def nginx_config(prefix: Path, listen: str, port: int, replica_ports: list[int], workers: int = 1) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in replica_ports)
    fields = {"PREFIX": str(prefix), "LISTEN": listen, "PORT": str(port), "SERVERS": servers,
              "WORKERS": str(workers)}
    text = TEMPLATE.read_text()
    for name, value in fields.items():
        text = text.replace(f"@{name}@", value)
    return text


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@dataclass
class Cluster:
    """nginx on `port` in front of one `streamlit run` per replica port; stop() ends them all."""

    port: int
    replica_ports: list[int]
    workdir: Path
    listen: str = "127.0.0.1"
    log: IO | None = None  # where the replicas and nginx write; None: this process's stdout and stderr
    replicas: dict[int, subprocess.Popen] = field(default_factory=dict)
    nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.listen in ('0.0.0.0', '127.0.0.1') else self.listen}:{self.port}"

    def start_replica(self, port: int) -> None:
        # A session of its own, so that Ctrl-C in the terminal reaches this launcher only, which stops the
        # children in order (nginx first: no new request reaches a replica that is going away).
        self.replicas[port] = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT if self.log else None, start_new_session=True,
        )

    def start(self, timeout: float = START_TIMEOUT) -> Cluster:
        nginx = find_nginx()
        if nginx is None:
            raise RuntimeError("nginx not found: install Debian's package with `apt-get install -y nginx`")
        busy = [p for p in [self.port, *self.replica_ports] if not port_is_free(p)]
        if busy:
            raise RuntimeError(f"port(s) already in use: {busy}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "nginx.conf"
        config.write_text(nginx_config(self.workdir, self.listen, self.port, self.replica_ports))
        try:
            for port in self.replica_ports:
                self.start_replica(port)
            deadline = time.monotonic() + timeout
            waiting = set(self.replica_ports)
            while waiting:
                dead = [p for p in waiting if self.replicas[p].poll() is not None]
                if dead:
                    raise RuntimeError(f"replica on port {dead[0]} exited with {self.replicas[dead[0]].returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"replica(s) on {sorted(waiting)} not healthy within {timeout:.0f} s")
                waiting = {p for p in waiting if not healthy(p)}
                if waiting:
                    time.sleep(0.3)
            # -e: nginx opens its compiled-in error log (/var/log/nginx) before reading the config.
            self.nginx = subprocess.Popen([nginx, "-p", str(self.workdir), "-c", str(config), "-e", "stderr"],
                                          stdout=self.log, stderr=subprocess.STDOUT if self.log else None,
                                          start_new_session=True)
            deadline = time.monotonic() + 15
            while not healthy(self.port):
                if self.nginx.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start (exit {self.nginx.poll()}); see its log")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def watch(self, stopping: list[bool]) -> int:
        """Until asked to stop: start a dead replica again; if nginx dies, the exit status."""
        while not stopping:
            if self.nginx is not None and self.nginx.poll() is not None:
                print(f"serve: nginx exited with {self.nginx.returncode}", file=sys.stderr)
                return 1
            for port, process in list(self.replicas.items()):
                if process.poll() is not None:
                    print(f"serve: replica on port {port} exited with {process.returncode}; starting it again",
                          file=sys.stderr)
                    self.start_replica(port)
            time.sleep(1)
        return 0

    def stop(self) -> None:
        """nginx first (a graceful quit), then every replica; whatever does not end in time is killed."""
        if self.nginx is not None:
            _end(self.nginx, signal.SIGQUIT, 10)
        for process in self.replicas.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.replicas.values():
            _end(process, None, 15)


def _end(process: subprocess.Popen, sig: signal.Signals | None, timeout: float) -> None:
    if process.poll() is None and sig is not None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS") or 0),
                        help="replicas to run (default: $REPLICAS); 0: one per usable core")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port; the replicas take the next ones")
    parser.add_argument("--listen", default="127.0.0.1", help="nginx's address (0.0.0.0 in a container)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "artifacts" / "serve",
                        help="nginx's prefix: config, pid, temp files, cache (default: artifacts/serve)")
    args = parser.parse_args(argv)
    replicas = args.replicas or usable_cores()
    cluster = Cluster(args.port, [args.port + 1 + i for i in range(replicas)], args.workdir.resolve(), args.listen)

    stopping: list[bool] = []

    def ask_to_stop(signum: int, frame: object) -> None:
        stopping.append(True)
        if cluster.nginx is None:  # still starting: abandon the start, which stops what it started
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    print(f"serve: starting {replicas} replica(s) on ports {cluster.replica_ports[0]}-{cluster.replica_ports[-1]}",
          flush=True)
    try:
        cluster.start()
    except RuntimeError as error:
        print(f"serve: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("serve: stopped while starting", file=sys.stderr)
        return 130
    print(f"serve: {replicas} replica(s) behind nginx at {cluster.url}  (Ctrl-C stops all)", flush=True)
    try:
        status = cluster.watch(stopping)
    finally:
        print("serve: stopping", flush=True)
        cluster.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
