"""The sidecar's own endpoints: capture batches posted by apps (``/v1/captures``), and
``/healthz`` and ``/metrics`` matching what happened."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shadowroute.fakellm import FakeLLMServer, FakeModel, default_settings
from support.sidecar import TASK

# --------------------------------------------------------------------------- /v1/captures


@pytest.mark.anyio
async def test_capture_batches_are_validated_queued_and_stored(
    tmp_path: Path, db_url: str, capture_completion, make_config, stored, request_for,
    sidecar_preset, sidecar_server, sidecar_state,
) -> None:
    good = {"task": "classify_intent", "request": {"model": "frontier", **request_for("classify_intent", 1)},
            "response": capture_completion("refund"), "latency_ms": 12.5, "metadata": {"user": "u1"}}
    anth = {"task": "notes", "api": "anthropic", "sampled": True,
            "request": {"model": "claude-x", "max_tokens": 50, "system": "be brief",
                        "messages": [{"role": "user", "content": "hi"}]},
            "response": "hello there"}
    with FakeLLMServer(default_settings(latency_scale=0.0)) as llm:
        config = make_config(db_url, sidecar_preset(None, candidates=llm.base_url))
        async with sidecar_server(config) as sc, httpx.AsyncClient(base_url=sc.base_url) as client:
            accepted = await client.post("/v1/captures", json={"captures": [good, anth]})
            stats = sidecar_state(sc).shadow.stats
            bad = await client.post("/v1/captures", json={"captures": [
                good,
                {**good, "task": ""},
                {"task": "x", "response": "y"},
                {**good, "bogus": 1},
                {**good, "latency_ms": -1},
            ]})
            others = [
                await client.post("/v1/captures", content=b"{nope"),
                await client.post("/v1/captures", json={"captures": "nope"}),
                await client.post("/v1/captures", json={}),
                await client.post("/v1/captures", json=[good]),
            ]
            offered_after_bad = stats.offered
    assert accepted.status_code == 202
    assert accepted.json() == {"received": 2, "queued": 2, "not_queued": 0}
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["type"] == "invalid_request_error"
    locs = {d["loc"] for d in error["details"]}
    assert {"captures.1.task", "captures.2.request", "captures.3.bogus", "captures.4.latency_ms"} <= locs
    assert not any(loc.startswith("captures.0") for loc in locs)
    for response in others:
        assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert offered_after_bad == 2  # the bad batch was refused whole
    exchanges, outputs = await stored(db_url)
    assert sorted((e.task_type, e.primary_output) for e in exchanges) == [
        ("classify_intent", "refund"), ("notes", "hello there")
    ]
    classify = next(e for e in exchanges if e.task_type == "classify_intent")
    assert classify.meta == {"user": "u1"} and classify.latency_ms == 12.5 and classify.input_tokens == 30
    notes = next(e for e in exchanges if e.task_type == "notes")
    assert notes.request["messages"][0] == {"role": "system", "content": "be brief"}
    assert sorted(o.model for o in outputs) == ["claude-small", "small"]
    assert all(o.exchange_id == classify.id and o.output for o in outputs)


# --------------------------------------------------------------------------- health, metrics


def test_healthz_and_metrics_match_what_happened(
    tmp_path: Path, sqlite_url: str, make_config, sidecar_preset, sidecar_server, wait_until,
    metrics, sidecar_state, anthropic_kwargs, request_for,
) -> None:
    settings = default_settings(latency_scale=0.0).with_model(FakeModel(name="stuck", hang=True))
    with FakeLLMServer(settings) as llm:
        config = make_config(
            sqlite_url, sidecar_preset(llm.base_url),
            # The five calls and the readings below must fit in the first timeout (a loaded
            # machine took more than 0.5 s): then one capture is in flight and one waits.
            models={"stuck": {"base_url": llm.base_url + "/v1", "timeout_s": 2.0, "max_retries": 0}},
            tasks={"classify_intent": {"candidates": ["stuck"], "sample_rate": 1.0}},
            mirror={"queue_size": 1, "workers": 1, "circuit_failures": 100},
        )
        with sidecar_server(config) as sc, httpx.Client(base_url=sc.base_url) as client:
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.json() == {"status": "ok", "upstream": True, "database": "ok",
                                     "queue_depth": 0, "spool_pending": 0,
                                     "daily_budget_usd": [10.0], "captures": "open"}
            stats = sidecar_state(sc).shadow.stats
            for i in range(5):  # worker 1 hangs on the candidate, 1 waits, 3 are dropped
                if i == 4:
                    response = client.post("/v1/messages", json=anthropic_kwargs(request_for("classify_intent", i)),
                                           headers={TASK: "classify_intent"})
                else:
                    response = client.post("/v1/chat/completions",
                                           json={"model": "frontier", **request_for("classify_intent", i)},
                                           headers={TASK: "classify_intent"})
                assert response.status_code == 200
                wait_until(lambda i=i: stats.enqueued + stats.dropped_queue_full == i + 1)
            wait_until(lambda: metrics(sc.base_url)[
                ("shadowroute_upstream_latency_seconds_count", (("api", "openai"),))] == 4)
            during = metrics(sc.base_url)
            health_during = client.get("/healthz").json()
            # Both mirrored captures time out on the hanging candidate, then are stored.
            wait_until(lambda: stats.stored_exchanges == 2, timeout=15)
            after = metrics(sc.base_url)
    assert during[("shadowroute_captured_total", ())] == 5
    assert during[("shadowroute_sampled_total", ())] == 5
    assert during[("shadowroute_dropped_total", (("reason", "queue_full"),))] == 3 == stats.dropped_queue_full
    assert during[("shadowroute_queue_depth", ())] == 1 and health_during["queue_depth"] == 1
    assert during[("shadowroute_spool_pending", ())] == 0
    assert during[("shadowroute_upstream_latency_seconds_bucket", (("api", "openai"), ("le", "+Inf")))] == 4
    assert during[("shadowroute_upstream_latency_seconds_bucket", (("api", "anthropic"), ("le", "+Inf")))] == 1
    assert during[("shadowroute_upstream_latency_seconds_sum", (("api", "openai"),))] > 0
    assert during[("shadowroute_upstream_requests_total", (("api", "openai"), ("status", "200")))] == 4
    assert after[("shadowroute_candidate_errors_total", (("kind", "timeout"),))] == 2
    assert after[("shadowroute_mirrored_total", ())] == 2
    assert after[("shadowroute_stored_exchanges_total", ())] == 2
    assert after[("shadowroute_queue_depth", ())] == 0
    assert after[("shadowroute_dropped_total", (("reason", "shutdown"),))] == 0
    # The ledger: 2 accepted, 2 stored, none discarded or lost.
    assert after[("shadowroute_accepted_total", ())] == 2
    assert after[("shadowroute_discarded_total", (("reason", "shutdown"),))] == 0
    assert after[("shadowroute_discarded_total", (("reason", "capture_error"),))] == 0
    assert after[("shadowroute_lost_exchanges_total", ())] == 0
