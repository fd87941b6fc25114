"""``shadowroute replay`` calls as OpenTelemetry spans: role ``offline_replay``, children of the
command's current span, each naming the stored exchange it answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import StatusCode

from shadowroute.offline.importer import import_file
from shadowroute.offline.replay import replay
from shadowroute.records import NOISE_FLOOR_MODEL
from shadowroute.store import Store
from support.otel import attrs, recording

pytestmark = pytest.mark.anyio

TASK = "classify_intent"


async def test_replay_calls_are_spans_under_the_commands_span(
    tmp_path: Path, sqlite_url: str, make_config: Callable[..., Any], chat_line, write_jsonl,
    fake_candidate, stored,
) -> None:
    config = make_config(sqlite_url, tasks={TASK: {"candidates": [], "noise_floor_rate": 0.0}},
                         mirror={"retry_backoff_s": 0.0},
                         store={"spool_dir": str(tmp_path / "spool"), "flush_interval_s": 0.01})
    path = write_jsonl(tmp_path / "traffic.jsonl", [chat_line(i, task=TASK) for i in range(3)])
    providers = {"small": fake_candidate("small", cost_usd=0.003),
                 "tiny": fake_candidate("tiny", mode="garbage"),
                 "frontier": fake_candidate("frontier")}
    async with await Store.open(sqlite_url) as store:
        assert (await import_file(config, store, path)).imported == 3
        with recording() as rec:
            with rec.tracer.start_as_current_span("shadowroute replay") as command:
                report = await replay(config, store, TASK, ["small", "tiny", NOISE_FLOOR_MODEL],
                                      providers=providers)
            spans = rec.spans()
    assert report.outputs == 9 and len(spans) == 9
    exchanges, _ = await stored(sqlite_url)
    by_model: dict[str, list[Any]] = {}
    for span in spans:
        a = attrs(span)
        assert a["shadowroute.role"] == "offline_replay" and a["shadowroute.task"] == TASK
        assert span.parent is not None and span.parent.span_id == command.get_span_context().span_id
        assert span.links == ()
        by_model.setdefault(a["shadowroute.model"], []).append(span)
    assert {m: len(s) for m, s in by_model.items()} == {"small": 3, "tiny": 3, NOISE_FLOOR_MODEL: 3}
    assert {attrs(s)["shadowroute.exchange_id"] for s in by_model["small"]} == {x.id for x in exchanges}
    assert all(attrs(s)["shadowroute.cost_usd"] == 0.003 for s in by_model["small"])
    assert all(s.name == "chat frontier" for s in by_model[NOISE_FLOOR_MODEL])
    for span in by_model["tiny"]:  # a 2xx without a usable completion
        assert span.status.status_code is StatusCode.ERROR
        assert attrs(span)["error.type"] == "bad_response"
