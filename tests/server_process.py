"""Run `wanderlens serve` as a child process on a free 127.0.0.1 port and wait until it is ready.

Used by the tests and benchmarks, which talk to a real server over real HTTP; the process is always stopped on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from wanderlens.errors import WanderlensError


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`with ServerProcess(registry, token=...) as server: server.url` -> a ready service; stopped afterwards."""

    def __init__(self, registry: str | Path, model: str = "production", token: str | None = None,
                 extra_args: list[str] | None = None, ready_timeout_s: float = 180.0,
                 log_path: str | Path | None = None) -> None:
        self.registry = Path(registry)
        self.model = model
        self.token = token
        self.extra_args = list(extra_args or [])
        self.ready_timeout_s = ready_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        """Start the server and block until /readyz answers 200 (or raise with the server's output)."""
        for _attempt in range(3):  # a port taken between free_port() and bind: try another
            self.port = free_port()
            cmd = [sys.executable, "-m", "wanderlens.cli.main", "serve", "--registry", str(self.registry),
                   "--model", self.model, "--port", str(self.port), *self.extra_args]
            if self.token:
                cmd += ["--token", self.token]
            env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
            self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
            if self._wait_ready():
                return self
            self.stop()
        raise WanderlensError(f"server did not become ready on 127.0.0.1 (log: {self.log_path})")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after 10 s); idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
