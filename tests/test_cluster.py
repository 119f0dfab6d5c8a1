"""`wanderlens cluster start|status|stop`: real Master and Worker daemons on 127.0.0.1, stopped by pid file only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from wanderlens.cluster.standalone import StandaloneCluster, _wait_gone

pytestmark = pytest.mark.cluster

CLI = [sys.executable, "-m", "wanderlens.cli.main"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", COLUMNS="200")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=180)


def test_cli_start_status_stop_touches_only_its_own_daemons(tmp_path: Path) -> None:
    cdir = tmp_path / "cluster"
    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True)  # not started by `cluster start`
    try:
        started = _cli("cluster", "start", "--workers", "2", "--cores", "1", "--memory", "1g",
                       "--port", "0", "--webui-port", "0", "--dir", str(cdir))
        try:
            assert started.returncode == 0, started.stderr
            assert "cluster up: spark://127.0.0.1:" in started.stdout

            status = _cli("cluster", "status", "--dir", str(cdir), "--json")
            assert status.returncode == 0, status.stderr
            info = json.loads(status.stdout)
            assert info["running"] is True
            assert info["master_url"].startswith("spark://127.0.0.1:")
            assert sorted(info["daemons"]) == ["master", "worker-1", "worker-2"]
            assert all(d["running"] for d in info["daemons"].values())
            assert [(w["state"], w["cores"], w["memory_mb"]) for w in info["workers"]] == [("ALIVE", 1, 1024)] * 2
            pids = [d["pid"] for d in info["daemons"].values()]
            for name in ("master", "worker-1", "worker-2"):
                assert (cdir / "pids" / f"{name}.pid").read_text().strip() == str(info["daemons"][name]["pid"])
                assert (cdir / "logs" / f"{name}.out").is_file()

            again = _cli("cluster", "start", "--port", "0", "--webui-port", "0", "--dir", str(cdir))
            assert again.returncode == 2
            assert "still running" in again.stderr and "cluster stop" in again.stderr
            assert len(again.stderr.strip().splitlines()) == 1

            # A pid file pointing at a process start did not launch (pid reuse) must not be killed by stop.
            (cdir / "pids" / "worker-2.pid").write_text(f"{bystander.pid}\n")
            state = json.loads((cdir / "cluster.json").read_text())
            real_worker2 = state["worker_daemons"]["2"]["pid"]
            state["worker_daemons"]["2"]["pid"] = bystander.pid
            (cdir / "cluster.json").write_text(json.dumps(state))
            os.killpg(real_worker2, signal.SIGTERM)
        finally:
            stopped = _cli("cluster", "stop", "--dir", str(cdir))
        assert stopped.returncode == 0, stopped.stderr
        assert "master" in stopped.stdout and "worker-1" in stopped.stdout and "worker-2" not in stopped.stdout
        assert _wait_gone(pids, 20) == [], "daemons still running after stop"
        assert bystander.poll() is None, "stop killed a process the cluster did not start"
        assert not (cdir / "cluster.json").exists()

        after = _cli("cluster", "status", "--dir", str(cdir))
        assert after.returncode == 1 and "no cluster started" in after.stdout
    finally:
        bystander.kill()
        bystander.wait()


def test_bad_settings_are_one_line_errors(tmp_path: Path) -> None:
    bad_memory = _cli("cluster", "start", "--memory", "lots", "--dir", str(tmp_path / "c1"))
    assert bad_memory.returncode == 2
    assert bad_memory.stderr.startswith("error: memory 'lots'") and "1g" in bad_memory.stderr

    cluster = StandaloneCluster(tmp_path / "c2")
    assert cluster.stop() == []
    assert cluster.status() == {"running": False, "dir": str(tmp_path / "c2")}
