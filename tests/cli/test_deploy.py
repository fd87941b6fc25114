"""The shipped schedules of `shadowroute nightly` (deploy/ and docker-compose.yml) are valid:
each parsed as its tool would, checked against the command's real options, and verified by
`systemd-analyze` when the machine has it."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CRON_FIELD = re.compile(r"^(\*|\d+)(-\d+)?(/\d+)?(,(\d+)(-\d+)?)*$")


def _nightly_options(cli) -> set[str]:
    help_text = cli("nightly", "--help", env={"COLUMNS": "200"}).stdout
    return set(re.findall(r"--[a-z][a-z-]+", help_text))


def _check_args(args: list[str], options: set[str]) -> None:
    assert args[0] == "nightly", args
    used = {a for a in args if a.startswith("--")}
    assert used <= options, used - options


def _cron_ok(schedule: str) -> None:
    fields = schedule.split()
    assert len(fields) == 5, schedule
    for value, (low, high) in zip(fields, [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)],
                                  strict=True):
        assert CRON_FIELD.match(value), value
        for number in re.findall(r"\d+", value.split("/")[0]):
            assert low <= int(number) <= high, value


def test_crontab_line(cli) -> None:
    lines = [line for line in (DEPLOY / "crontab").read_text().splitlines()
             if line.strip() and not line.startswith("#") and "=" not in line.split()[0]]
    (line,) = lines
    fields = line.split(maxsplit=5)
    _cron_ok(" ".join(fields[:5]))
    command = fields[5]
    args = re.search(r"bin/shadowroute (.*?)(>>|$)", command).group(1).split()
    _check_args(args, _nightly_options(cli))


def test_systemd_service_and_timer(cli, tmp_path: Path) -> None:
    service = configparser.ConfigParser(strict=True, interpolation=None)
    service.read(DEPLOY / "shadowroute-nightly.service")
    assert service["Service"]["Type"] == "oneshot"
    exec_start = service["Service"]["ExecStart"].split()
    assert exec_start[0].endswith("/shadowroute")
    _check_args(exec_start[1:], _nightly_options(cli))
    assert set(service["Service"]["SuccessExitStatus"].split()) == {"1", "3"}
    timer = configparser.ConfigParser(strict=True, interpolation=None)
    timer.read(DEPLOY / "shadowroute-nightly.timer")
    assert timer["Install"]["WantedBy"] == "timers.target"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # the parse above is all a machine without systemd can check
        return
    calendar = subprocess.run([analyze, "calendar", timer["Timer"]["OnCalendar"]],
                              capture_output=True, text=True)
    assert calendar.returncode == 0, calendar.stderr
    # verify needs ExecStart to exist: point it at this checkout's command for the check.
    text = (DEPLOY / "shadowroute-nightly.service").read_text()
    text = text.replace("/srv/shadowroute/.venv/bin/shadowroute",
                        str(Path(sys.executable).with_name("shadowroute")))
    (tmp_path / "shadowroute-nightly.service").write_text(
        text.replace("/srv/shadowroute", str(tmp_path)))
    shutil.copy(DEPLOY / "shadowroute-nightly.timer", tmp_path)
    verify = subprocess.run([analyze, "verify", str(tmp_path / "shadowroute-nightly.service"),
                             str(tmp_path / "shadowroute-nightly.timer")],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr


def test_kubernetes_cronjob(cli) -> None:
    job = yaml.safe_load((DEPLOY / "cronjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "CronJob")
    spec = job["spec"]
    _cron_ok(spec["schedule"])
    assert spec["concurrencyPolicy"] == "Forbid"  # and the lock, for runs started by hand
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    _check_args(container["args"], _nightly_options(cli))
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert mounts == {v["name"] for v in pod["volumes"]}


def test_docker_compose_nightly_service(cli) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    nightly = compose["services"]["nightly"]
    script = nightly["entrypoint"][-1]
    args = script.split("shadowroute ", 1)[1].split(";")[0].split()
    _check_args(args, _nightly_options(cli))
    assert "reports" in compose["volumes"]
    sidecar = compose["services"]["sidecar"]["command"]
    assert "--ingest-token-env" in sidecar and "--metrics-token-env" in sidecar
