"""A fake OpenAI- and Anthropic-compatible LLM server with simulated, deterministic models.

It speaks OpenAI chat completions (tools, parallel calls, ``n``, ``reasoning_effort``,
``response_format``), the OpenAI Responses API (``/v1/responses``: items, function calls,
reasoning, ``previous_response_id``) and Anthropic Messages (tools, thinking,
``output_config.format``), streamed or not, in the shapes the official SDKs validate.

    from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests

    with FakeLLMServer(default_settings(latency_scale=0)) as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="fake")
        for demo in sample_requests(10, seed=1):
            reply = client.chat.completions.create(model="small", **demo.request)

Each model's quality per task type, latency, price and faults are configurable
(:class:`FakeModel`); the first answer to a request is a pure function of (seed, model,
messages). A repeated identical request keeps that answer with the model's ``consistency``
(1.0 by default; the default ``frontier`` has 0.95, so replaying it shows a noise floor).

Any model sent a pairwise judge prompt (the format of :mod:`shadowroute.scoring.prompt`) answers
as a simulated judge: it checks both responses against the task's ground truth, errs with
position bias ("A") at ``1 - accuracy_for("judge")``, is fooled by a response that addresses the
judge, and replies in prose at ``verdict_garbage_rate`` (see ``fakellm/_judge.py``). The default
roster: ``frontier`` (primary), ``small``, ``tiny``, ``claude-small`` (candidates) and ``judge``.

The ``lookup_order`` task (:data:`TOOL_SIMULATORS`) is an agent with the tools
:data:`LOOKUP_TOOLS`: it calls them (in parallel for two order ids) and answers from the results
a client returns (:func:`tool_result` makes them). ``frontier`` is a reasoning model: asked to
reason or think, it spends reasoning tokens (OpenAI) or shows a signed thinking block (Anthropic).
"""

from .app import FakeState, create_app
from .models import (
    ABSTAIN_TEXT,
    DEFAULT_SETTINGS,
    REFUSAL_TEXT,
    FakeLLMSettings,
    FakeModel,
    default_settings,
)
from .server import FakeLLMServer, run
from .tasks import (
    EXTRACT_ORDER_SCHEMA,
    LOOKUP_TOOLS,
    TASK_SIMULATORS,
    TOOL_SIMULATORS,
    DemoRequest,
    TaskSimulator,
    count_tokens,
    detect_task,
    ground_truth,
    make_request,
    sample_requests,
    simulate,
    task_marker,
    tool_result,
)

__all__ = [
    "ABSTAIN_TEXT",
    "DEFAULT_SETTINGS",
    "EXTRACT_ORDER_SCHEMA",
    "LOOKUP_TOOLS",
    "REFUSAL_TEXT",
    "TASK_SIMULATORS",
    "TOOL_SIMULATORS",
    "DemoRequest",
    "FakeLLMServer",
    "FakeLLMSettings",
    "FakeModel",
    "FakeState",
    "TaskSimulator",
    "count_tokens",
    "create_app",
    "default_settings",
    "detect_task",
    "ground_truth",
    "make_request",
    "run",
    "sample_requests",
    "simulate",
    "task_marker",
    "tool_result",
]
