"""The files that run Raspberry elsewhere: prefect.yaml, docker-compose.yml, Dockerfile, .env.

docker-compose.yml is validated offline by `docker-compose config` where the tool is installed
(Debian's package); its structure is checked everywhere.
"""

import shutil
import subprocess

import pytest
import yaml
from conftest import ROOT, config_dict, write_config
from raspberry_flows.deployment import nightly_settings

from raspberry.errors import ConfigError


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_compose_file_passes_offline_validation(tmp_path):
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(ROOT / name, tmp_path / name)
    example = (ROOT / ".env.example").read_text()
    (tmp_path / ".env").write_text(example.replace("POSTGRES_PASSWORD=\n", "POSTGRES_PASSWORD=x\n"))
    proc = _config(tmp_path)
    assert proc.returncode == 0, proc.stderr
    # With the example's empty password the file refuses to start, naming what to set.
    (tmp_path / ".env").write_text(example)
    proc = _config(tmp_path)
    assert proc.returncode != 0 and "POSTGRES_PASSWORD" in proc.stderr


def _config(folder) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker-compose", "config", "-q"], cwd=folder, capture_output=True, text=True
    )


def test_compose_services_are_pinned_and_keep_their_data():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "prefect-server",
        "worker",
        "dask-scheduler",
        "dask-worker",
    }
    assert services["prefect-server"]["image"].startswith("prefecthq/prefect:3.9.")
    for name in ("postgres", "prefect-server"):
        assert ":latest" not in services[name]["image"] and ":" in services[name]["image"]
    assert services["prefect-server"]["ports"] == ["127.0.0.1:4200:4200"]
    assert "postgres:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "data:/app/data" in services["worker"]["volumes"]
    assert set(compose["volumes"]) == {"postgres", "data"}
    db_url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert db_url.startswith("postgresql+asyncpg://") and "${POSTGRES_PASSWORD" in db_url
    worker = services["worker"]
    assert worker["build"] == "." and (ROOT / "Dockerfile").exists()
    assert worker["env_file"] == ".env"
    command = " ".join(worker["command"])
    assert "--type process" in command and "deploy --name nightly-build" in command


def test_compose_spreads_shard_tasks_over_dask_workers_sharing_postgres_state():
    compose = _compose()
    services = compose["services"]
    scheduler, dask_worker, worker = (
        services[name] for name in ("dask-scheduler", "dask-worker", "worker")
    )
    assert scheduler["command"][:2] == ["dask", "scheduler"] and "8786" in scheduler["command"]
    assert dask_worker["command"][:3] == ["dask", "worker", "tcp://dask-scheduler:8786"]
    for service in (scheduler, dask_worker):
        assert "ports" not in service  # reached on compose's own network only
        assert service["image"] == worker["image"]
    # The flow's worker and the Dask workers: one environment, config and keys from .env.
    assert dask_worker["environment"] == worker["environment"]
    assert dask_worker["env_file"] == ".env" and "data:/app/data" in dask_worker["volumes"]
    env = worker["environment"]
    assert env["RASPBERRY_EXECUTOR"] == "dask://dask-scheduler:8786"
    state = env["RASPBERRY_STATE_URL"]
    assert (
        state.startswith("postgresql://prefect@postgres:5432/")
        and ":" not in state.split("@")[0][13:]
    )
    assert env["PGPASSWORD"].startswith("${POSTGRES_PASSWORD")
    # The gateway state's database is created beside Prefect's when the volume is new.
    init = services["postgres"]["volumes"][1].split(":")[0]
    assert "CREATE DATABASE raspberry" in (ROOT / init).read_text()
    assert dask_worker["security_opt"] == worker["security_opt"]  # the code sandbox works there


def test_secrets_file_is_ignored_and_its_example_holds_no_secret():
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert {"POSTGRES_PASSWORD", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"} <= set(example)
    assert all(not v for k, v in example.items() if k != "RASPBERRY_CONFIG")


def test_prefect_yaml_deploys_the_build_flow_one_night_at_a_time():
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (deployment,) = doc["deployments"]
    assert deployment["name"] == "nightly-build"
    assert deployment["entrypoint"] == "flows/build.py:build_dataset"
    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    (step,) = doc["build"]
    assert step["raspberry_flows.deployment.nightly_settings"]["id"] == "nightly"
    assert deployment["schedules"] == [
        {"cron": "{{ nightly.cron }}", "timezone": "{{ nightly.timezone }}"}
    ]
    assert (ROOT / step["raspberry_flows.deployment.nightly_settings"]["config"]).exists()


def test_nightly_settings_come_from_the_config(tmp_path, monkeypatch):
    schedule = {"cron": "15 4 * * 1-5", "timezone": "America/Chicago"}
    path = write_config(tmp_path, config_dict(tmp_path, schedule=schedule))
    monkeypatch.delenv("RASPBERRY_CONFIG", raising=False)
    settings = nightly_settings(str(path))
    assert settings == {
        "config_path": str(path.resolve()),
        "cron": "15 4 * * 1-5",
        "timezone": "America/Chicago",
        "directory": str(ROOT),
    }
    monkeypatch.setenv("RASPBERRY_CONFIG", str(path))
    assert nightly_settings("configs/demo.yaml")["cron"] == "15 4 * * 1-5"
    monkeypatch.setenv("RASPBERRY_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="config file not found"):
        nightly_settings()
