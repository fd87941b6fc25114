"""A fake OpenAI- and Anthropic-compatible LLM server with simulated, deterministic models.

    from shadowroute.fakellm import FakeLLMServer, default_settings, sample_requests

    with FakeLLMServer(default_settings(latency_scale=0)) as srv:
        client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="fake")
        for demo in sample_requests(10, seed=1):
            reply = client.chat.completions.create(model="small", **demo.request)

Each model's quality per task type, latency, price and faults are configurable
(:class:`FakeModel`); the answer to a request is a pure function of (seed, model, messages).
"""

from .app import FakeState, create_app
from .models import DEFAULT_SETTINGS, FakeLLMSettings, FakeModel, default_settings
from .server import FakeLLMServer, run
from .tasks import (
    EXTRACT_ORDER_SCHEMA,
    TASK_SIMULATORS,
    DemoRequest,
    TaskSimulator,
    count_tokens,
    detect_task,
    ground_truth,
    make_request,
    sample_requests,
    simulate,
    task_marker,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "EXTRACT_ORDER_SCHEMA",
    "TASK_SIMULATORS",
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
]
