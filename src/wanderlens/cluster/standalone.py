"""A real Spark standalone cluster on 127.0.0.1 (one Master, N Workers) for development and tests.

pip's pyspark ships no `start-master.sh`; its `bin/spark-class` runs the Master and Worker classes directly. Each
daemon runs in its own session (a Worker's executors, their Python workers and training processes join it), its pid
is kept in a pid file under the cluster folder, and `stop` ends only daemons whose command line carries that folder's
marker (and what is left of their sessions). The process table comes from psutil, which also refuses to signal a
pid that a new process has taken over since it was listed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from wanderlens.errors import ConfigError, WanderlensError
from wanderlens.io import read_json, write_json

DEFAULT_DIR = Path(".wanderlens") / "cluster"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"
MARKER_PROP = "wanderlens.cluster.dir"


def spark_home() -> Path:
    """The Spark distribution bundled with pip's pyspark (holds bin/spark-class and the jars)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_memory_mb(memory: str) -> int:
    """Spark memory string ('2g', '768m', '1024') to megabytes."""
    text = str(memory).strip().lower()
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ConfigError(f"memory {memory!r} is not a Spark memory size; write it like 1g or 768m") from None


@dataclass
class DaemonInfo:
    """One daemon this cluster started: its role, pid (= session and process group id) and log file."""

    name: str
    pid: int
    log: str
    port: int = 0
    webui_port: int = 0


@dataclass
class ClusterState:
    """What `start` wrote to cluster.json: enough for `status` and `stop` in another process."""

    dir: str
    host: str
    port: int
    webui_port: int
    workers: int
    cores: int
    memory: str
    python: str
    started_at: float
    master: DaemonInfo | None = None
    worker_daemons: dict[int, DaemonInfo] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{self.host}:{self.webui_port}"


def _pid_alive(pid: int) -> bool:
    """True when `pid` runs; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def _cmdline(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


class StandaloneCluster:
    """A Spark standalone cluster on this machine, controlled through the files in `dir`.

    `start()` launches the Master and Workers and waits until every Worker is registered; `stop()` ends them (and
    their executors); `status()` reports pids and what the Master sees. Works across processes: the CLI's
    `cluster start` and a later `cluster stop` share nothing but the folder.
    """

    def __init__(self, dir: str | Path = DEFAULT_DIR) -> None:
        self.dir = Path(dir).resolve()

    # -- files -------------------------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def pid_dir(self) -> Path:
        return self.dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def _pid_file(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def load_state(self) -> ClusterState | None:
        """The state `start` saved, or None when this folder holds no started cluster."""
        if not self.state_path.is_file():
            return None
        raw = read_json(self.state_path)
        master = DaemonInfo(**raw.pop("master")) if raw.get("master") else None
        workers = {int(k): DaemonInfo(**v) for k, v in (raw.pop("worker_daemons") or {}).items()}
        return ClusterState(**raw, master=master, worker_daemons=workers)

    def _save_state(self, state: ClusterState) -> None:
        data = asdict(state)
        data["worker_daemons"] = {str(k): v for k, v in data["worker_daemons"].items()}
        write_json(data, self.state_path)

    @property
    def state(self) -> ClusterState:
        state = self.load_state()
        if state is None:
            raise WanderlensError(f"no cluster started from {self.dir}; run 'wanderlens cluster start' first")
        return state

    @property
    def master_url(self) -> str:
        """spark://127.0.0.1:PORT of the running Master; pass it as --master or WANDERLENS_SPARK_MASTER."""
        return self.state.master_url

    # -- processes ---------------------------------------------------------------------------------------------
    def _owned(self, pid: int) -> bool:
        """True when `pid` is alive and is a daemon this folder started (guards against reused pids)."""
        return _pid_alive(pid) and f"-D{MARKER_PROP}={self.dir}" in _cmdline(pid)

    def _env(self, state: ClusterState) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOCAL_IP=state.host,
            SPARK_LOG_DIR=str(self.log_dir),
            SPARK_PID_DIR=str(self.pid_dir),
            SPARK_CONF_DIR=str(self.dir / "conf"),
            SPARK_DAEMON_MEMORY=env.get("WANDERLENS_CLUSTER_DAEMON_MEMORY", "512m"),
            SPARK_DAEMON_JAVA_OPTS=f"-D{MARKER_PROP}={self.dir}",
            # Executors' Python workers run the project's interpreter (the venv), same as the driver.
            PYSPARK_PYTHON=state.python,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        env.pop("SPARK_NO_DAEMONIZE", None)
        return env

    def _launch(self, state: ClusterState, name: str, cls: str, args: list[str]) -> DaemonInfo:
        """Start one daemon with spark-class in its own session, logging to logs/<name>.out."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.out"
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), cls, *args],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(state),
                cwd=str(self.dir),
                start_new_session=True,
            )
        self._pid_file(name).write_text(f"{proc.pid}\n")
        return DaemonInfo(name=name, pid=proc.pid, log=str(log))

    def start(
        self,
        workers: int = 2,
        cores: int = 1,
        memory: str = "1g",
        port: int | None = 7077,
        webui_port: int | None = 8080,
        host: str = "127.0.0.1",
        timeout: float = 90.0,
    ) -> ClusterState:
        """Start a Master and `workers` Workers (`cores` and `memory` each); return once all are registered.

        `port`/`webui_port` None picks free ports (what tests use, so several clusters can share a machine).
        """
        if workers < 1 or cores < 1:
            raise ConfigError(f"a cluster needs at least 1 worker with 1 core (got workers={workers}, cores={cores})")
        parse_memory_mb(memory)
        current = self.load_state()
        if current is not None and any(self._owned(d.pid) for d in self._daemons(current)):
            raise WanderlensError(
                f"a cluster started from {self.dir} is still running ({current.master_url}); "
                f"run 'wanderlens cluster stop --dir {self.dir}' first"
            )
        port = port or free_port()
        webui_port = webui_port or free_port()
        for p, what in ((port, "master port"), (webui_port, "master web UI port")):
            if _listening(host, p):
                raise WanderlensError(
                    f"{what} {p} on {host} is already in use; pick another with --port/--webui-port"
                )
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "conf").mkdir(exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        state = ClusterState(
            dir=str(self.dir), host=host, port=port, webui_port=webui_port, workers=workers, cores=cores,
            memory=memory, python=sys.executable, started_at=time.time(),
        )
        state.master = self._launch(
            state, "master", MASTER_CLASS, ["--host", host, "--port", str(port), "--webui-port", str(webui_port)]
        )
        state.master.port, state.master.webui_port = port, webui_port
        self._save_state(state)
        try:
            self._wait(lambda: self.master_info(state) is not None, timeout, "the Master to answer", state.master)
            for i in range(1, workers + 1):
                state.worker_daemons[i] = self._start_worker_process(state, i)
                self._save_state(state)
            self.wait_for_workers(workers, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        return state

    def _start_worker_process(self, state: ClusterState, index: int) -> DaemonInfo:
        work = self.dir / "work" / f"worker-{index}"
        work.mkdir(parents=True, exist_ok=True)
        args = [
            "--host", state.host, "--cores", str(state.cores), "--memory", state.memory,
            "--work-dir", str(work), "--webui-port", "0", state.master_url,
        ]
        return self._launch(state, f"worker-{index}", WORKER_CLASS, args)

    def _daemons(self, state: ClusterState) -> list[DaemonInfo]:
        return ([state.master] if state.master else []) + list(state.worker_daemons.values())

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str, daemon: DaemonInfo | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if daemon is not None and not _pid_alive(daemon.pid):
                raise WanderlensError(f"{daemon.name} exited while waiting for {what}; see its log {daemon.log}:\n"
                                      + _tail(daemon.log))
            time.sleep(0.5)
        where = f"; see {daemon.log}" if daemon else f"; logs in {self.log_dir}"
        raise WanderlensError(f"timed out after {timeout:.0f}s waiting for {what}{where}")

    def wait_for_workers(self, count: int, timeout: float = 90.0) -> None:
        """Block until the Master lists `count` ALIVE workers."""
        state = self.state
        self._wait(lambda: len(self.alive_workers()) >= count, timeout,
                   f"{count} worker(s) to register with {state.master_url}")

    def master_info(self, state: ClusterState | None = None) -> dict[str, Any] | None:
        """The Master's own JSON view (workers, applications), or None when it does not answer."""
        state = state or self.load_state()
        if state is None:
            return None
        try:
            with urllib.request.urlopen(f"{state.webui_url}/json/", timeout=3) as resp:
                return json.loads(resp.read().decode())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def alive_workers(self) -> list[dict[str, Any]]:
        """Workers the Master currently lists as ALIVE."""
        info = self.master_info() or {}
        return [w for w in info.get("workers", []) if w.get("state") == "ALIVE"]

    def worker_processes(self, index: int) -> list[int]:
        """Pids of worker `index` and everything it started (executors, Python workers, training ranks)."""
        return sorted(proc.pid for proc in _family(self.worker_pid(index)))

    def worker_pid(self, index: int) -> int:
        """Pid (and session id) of worker `index` (1-based)."""
        daemon = self.state.worker_daemons.get(index)
        if daemon is None:
            raise WanderlensError(f"worker {index} is not part of the cluster in {self.dir}")
        return daemon.pid

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker `index` with its executors and Python workers, as if its machine died."""
        pid = self.worker_pid(index)
        if not self._owned(pid):
            raise WanderlensError(f"worker {index} (pid {pid}) is not running")
        family = _family(pid)
        _kill_all(family, signal.SIGKILL)
        _wait_gone([proc.pid for proc in family], 10.0)

    def start_worker(self, index: int, timeout: float = 90.0) -> None:
        """(Re)start worker `index` (after `kill_worker`, like a replaced machine) and wait until it registers."""
        state = self.state
        daemon = state.worker_daemons.get(index)
        if daemon is not None and self._owned(daemon.pid):
            raise WanderlensError(f"worker {index} is already running (pid {daemon.pid})")
        before = len(self.alive_workers())
        state.worker_daemons[index] = self._start_worker_process(state, index)
        self._save_state(state)
        self.wait_for_workers(before + 1, timeout=timeout)

    def stop(self, timeout: float = 20.0) -> list[str]:
        """Stop the daemons this folder started (Workers first, then the Master); returns what was stopped."""
        state = self.load_state()
        if state is None:
            return []
        daemons = list(state.worker_daemons.values()) + ([state.master] if state.master else [])
        stopped: list[str] = []
        families = {d.pid: _family(d.pid) for d in daemons if self._owned(d.pid)}
        for daemon in daemons:
            if self._owned(daemon.pid):
                try:
                    os.killpg(daemon.pid, signal.SIGTERM)
                    stopped.append(f"{daemon.name} (pid {daemon.pid})")
                except ProcessLookupError:
                    pass
        pids = [d.pid for d in daemons]
        left = _wait_gone(pids, timeout)
        for pid in left:
            if self._owned(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        _wait_gone(left, 5.0)
        for daemon in daemons:
            # Executors, Python workers and training ranks can outlive the daemon: end those too.
            _kill_all(families.get(daemon.pid, []), signal.SIGKILL)
            self._kill_orphans(daemon.pid)
            self._pid_file(daemon.name).unlink(missing_ok=True)
        self.state_path.unlink(missing_ok=True)
        return stopped

    def _kill_orphans(self, sid: int) -> None:
        """SIGKILL what is left of a daemon's session (executors, Python workers) once the daemon is gone."""
        members = _session_members(sid)
        if any(proc.pid == sid for proc in members):  # the session id is someone else's process now: not ours
            return
        _kill_all(members, signal.SIGKILL)

    def status(self) -> dict[str, Any]:
        """Pids (running or not) of what `start` started and the Master's view of the workers."""
        state = self.load_state()
        if state is None:
            return {"running": False, "dir": str(self.dir)}
        daemons = {d.name: {"pid": d.pid, "running": self._owned(d.pid), "log": d.log} for d in self._daemons(state)}
        info = self.master_info(state) or {}
        return {
            "running": bool(daemons.get("master", {}).get("running")),
            "dir": str(self.dir),
            "master_url": state.master_url,
            "webui_url": state.webui_url,
            "daemons": daemons,
            "workers": [
                {"id": w.get("id"), "state": w.get("state"), "cores": w.get("cores"),
                 "cores_used": w.get("coresused"), "memory_mb": w.get("memory"), "memory_used_mb": w.get("memoryused")}
                for w in info.get("workers", [])
            ],
            "applications": [
                {"id": a.get("id"), "name": a.get("name"), "state": a.get("state"), "cores": a.get("cores")}
                for a in info.get("activeapps", [])
            ],
        }

    def spark_conf(self) -> dict[str, str]:
        """Executor settings that fit this cluster's workers (one executor per worker, all its cores)."""
        state = self.state
        return {
            "spark.executor.cores": str(state.cores),
            "spark.executor.memory": f"{parse_memory_mb(state.memory)}m",
            "spark.cores.max": str(state.cores * state.workers),
        }

    def __enter__(self) -> StandaloneCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listening(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive (reaping our own children); return those still alive."""
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        for pid in list(left):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _pid_alive(pid):
                left.remove(pid)
        if left:
            time.sleep(0.2)
    return left


def _proc_table() -> dict[int, tuple[psutil.Process, int, int]]:
    """pid -> (process, parent pid, session id) of every live (non-zombie) process."""
    table = {}
    for proc in psutil.process_iter(["ppid", "status"]):
        if proc.info["status"] in (None, psutil.STATUS_ZOMBIE):
            continue
        try:
            table[proc.pid] = (proc, proc.info["ppid"], os.getsid(proc.pid))
        except OSError:  # gone since it was listed
            continue
    return table


def _family(root: int) -> list[psutil.Process]:
    """A daemon's processes: its session, and every descendant of those by parent pid, wherever they moved
    (TorchDistributor's training ranks start sessions of their own)."""
    table = _proc_table()
    found = {pid for pid, (_, _, sid) in table.items() if sid == root}
    if root in table:
        found.add(root)
    while True:
        more = {pid for pid, (_, ppid, _) in table.items() if ppid in found} - found
        if not more:
            return [table[pid][0] for pid in sorted(found)]
        found |= more


def _session_members(sid: int) -> list[psutil.Process]:
    """Processes in session `sid`: a daemon started with its own session and everything it spawned, including
    processes that moved to process groups of their own (TorchDistributor's torchrun)."""
    return [proc for proc, _, session in _proc_table().values() if session == sid]


def _kill_all(procs: list[psutil.Process], sig: int) -> None:
    """Signal each of `procs` that is still the process it was when listed (psutil checks pid reuse)."""
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:  # gone, reused by another process, or not ours
            pass


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
