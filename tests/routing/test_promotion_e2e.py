"""The whole loop against the fake LLM server: captured traffic -> score -> report -> promote ->
the next requests go to the cheap model (library Router and sidecar) -> reverse-shadow pairs
are stored -> the cheap model degrades -> the next report recommends demotion -> demote
restores the primary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shadowroute import Router, Shadow, load_config
from shadowroute.config import Config
from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests
from shadowroute.fakellm.tasks import ClassifyIntent
from shadowroute.report import run_report
from shadowroute.scoring import run_scoring
from shadowroute.serving import BackgroundServer
from shadowroute.sidecar import create_app
from shadowroute.store import Exchange, Store

pytestmark = pytest.mark.anyio

TASK = "classify_intent"


def write_config(tmp_path: Path, base_url: str, db_url: str) -> Path:
    labels = ", ".join(f'"{label}"' for label in ClassifyIntent.labels)
    toml = tmp_path / "shadowroute.toml"
    toml.write_text(f"""
database_url = "{db_url}"
seed = 3

[models.frontier]
base_url = "{base_url}/v1"
input_price = 2.5
output_price = 10.0

[models.small]
base_url = "{base_url}/v1"
input_price = 0.15
output_price = 0.6

[tasks.{TASK}]
candidates = ["small"]
sample_rate = 1.0
noise_floor_rate = 0.3
min_samples = 60
required_quality = 0.85
margin = 0.1
[tasks.{TASK}.scorers.label]
labels = [{labels}]

[routes]
reverse_shadow_rate = 1.0
reload_interval_s = 0

[sidecar]
upstream = "{base_url}"

[store]
spool_dir = "{tmp_path / 'spool'}"
flush_interval_s = 0.05
""")
    return toml


@pytest.fixture
def cli(cli: Callable[..., Any]) -> Callable[..., Any]:
    """``cli(toml, *args)``: the command line in the config file's folder, on that config, as
    actor ``e2e``."""

    def run(toml: Path, *args: str) -> Any:
        return cli(*args, cwd=toml.parent, env={
            "SHADOWROUTE_CONFIG": str(toml), "SHADOWROUTE_DATABASE_URL": "", "SHADOWROUTE_ACTOR": "e2e"})

    return run


async def through_router(config: Config, base_url: str, n: int, seed: int) -> list[str]:
    """``n`` classify_intent requests through Router.route_and_shadow; the models that answered."""
    answered: list[str] = []
    async with Shadow(config) as sh, httpx.AsyncClient(base_url=base_url) as client:
        router = Router(config)

        async def call(request: dict[str, Any]) -> dict[str, Any]:
            response = await client.post("/v1/chat/completions", json=request)
            response.raise_for_status()
            return response.json()

        for item in sample_requests(n, seed=seed, tasks=[TASK]):
            reply = await router.route_and_shadow(
                task=TASK, request={"model": "frontier", **item.request}, call=call)
            answered.append(reply["model"])
    assert sh.stats.capture_errors == 0 and sh.stats.dropped == 0
    return answered


async def through_sidecar(config: Config, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` requests through the sidecar; (model that answered, X-Shadowroute-Route)."""
    out = []
    with BackgroundServer(create_app(config), timeout_graceful_shutdown=1.0) as sidecar:
        async with httpx.AsyncClient(base_url=sidecar.base_url, timeout=30) as client:
            for item in sample_requests(n, seed=seed, tasks=[TASK]):
                response = await client.post(
                    "/v1/chat/completions", json={"model": "frontier", **item.request},
                    headers={"X-Shadowroute-Task": TASK})
                response.raise_for_status()
                out.append((response.json()["model"], response.headers["x-shadowroute-route"]))
    return out


async def reverse_pairs(url: str) -> int:
    async with await Store.open(url) as store, store.session() as s:
        return await s.scalar(select(func.count()).select_from(Exchange)
                              .where(Exchange.route == "reverse"))


async def score_and_report(config: Config, tmp_path: Path, name: str) -> Any:
    await run_scoring(config)
    report, _, _ = await run_report(config, since=None, out=tmp_path / f"{name}.html")
    return report


async def test_promote_route_drift_demote(tmp_path: Path, cli) -> None:
    settings = default_settings(seed=3, latency_scale=0.0)
    settings = settings.with_model(settings.models["frontier"].with_changes(
        task_accuracy={TASK: 1.0}))
    settings = settings.with_model(settings.models["small"].with_changes(
        task_accuracy={TASK: 1.0}))
    with FakeLLMServer(settings) as fake:
        db_url = f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
        toml = write_config(tmp_path, fake.base_url, db_url)
        config = load_config(toml)

        # 1. Production on the primary, shadowed to the candidate; nothing promoted yet.
        assert cli(toml, "db", "upgrade").returncode == 0
        refused = cli(toml, "promote", TASK, "--to", "small")
        assert refused.returncode == 2 and "no report has decided" in refused.stderr
        assert set(await through_router(config, fake.base_url, 150, seed=1)) == {"frontier"}
        report = await score_and_report(config, tmp_path, "before")
        (small,) = [c for t in report.tasks if t.task == TASK for c in t.candidates
                    if c.model == "small"]
        assert small.verdict == "PROMOTE", small.reason

        # 2. Promote: the CLI is gated on that verdict and writes the route map.
        promoted = cli(toml, "promote", TASK, "--to", "small")
        assert promoted.returncode == 0, promoted.stderr
        assert f"promoted {TASK} -> small (replacing frontier)" in promoted.stdout
        assert (tmp_path / "routes.yaml").exists()
        listed = cli(toml, "routes")
        assert TASK in listed.stdout and "PROMOTE" in listed.stdout

        # 3. The next requests go to the cheap model, through the Router and the sidecar.
        fake.reset_stats()
        assert set(await through_router(config, fake.base_url, 40, seed=2)) == {"small"}
        via_sidecar = await through_sidecar(config, 40, seed=3)
        assert {model for model, _ in via_sidecar} == {"small"}
        assert all("route=promoted" in header for _, header in via_sidecar)
        assert fake.calls("small") == 80  # production only: small is no longer mirrored to
        assert fake.calls("frontier") >= 80  # the reverse shadow: every call (rate 1.0)
        stored_reverse = await reverse_pairs(db_url)
        assert stored_reverse == 80

        report = await score_and_report(config, tmp_path, "holding")
        (check,) = report.promoted
        assert (check.task, check.model, check.n) == (TASK, "small", 80)
        assert check.verdict in ("HOLDS", "NEED MORE DATA"), check.reason
        ok = cli(toml, "routes", "--check")
        assert ok.returncode == 0, ok.stdout + ok.stderr

        # 4. The cheap model degrades: the next report recommends demotion, --check alerts.
        fake.update_model("small", task_accuracy={TASK: 0.2})
        await through_router(config, fake.base_url, 60, seed=4)
        await through_sidecar(config, 60, seed=5)
        report = await score_and_report(config, tmp_path, "drifted")
        (check,) = report.promoted
        assert check.verdict == "DEMOTE RECOMMENDED", check.reason
        assert check.command == f"shadowroute demote {TASK}"
        assert "DEMOTE RECOMMENDED" in (tmp_path / "drifted.html").read_text()
        alert = cli(toml, "routes", "--check")
        assert alert.returncode == 1 and f"shadowroute demote {TASK}" in alert.stdout
        diff = cli(toml, "routes", "--diff")
        assert f"{TASK}: small -> primary" in diff.stdout

        # 5. Demote: the primary serves the task type again, in the library and the sidecar.
        demoted = cli(toml, "demote", TASK, "--reason", "drift")
        assert demoted.returncode == 0, demoted.stderr
        assert Router(config).model_for(TASK, "frontier") == "frontier"
        assert set(await through_router(config, fake.base_url, 5, seed=6)) == {"frontier"}
        after = await through_sidecar(config, 5, seed=7)
        assert {model for model, _ in after} == {"frontier"}
        assert all("route=primary" in header for _, header in after)
        history = cli(toml, "routes", "--history")
        assert "promote" in history.stdout and "demote" in history.stdout and "e2e" in history.stdout
        assert await reverse_pairs(db_url) == 200  # none added after the demotion
