"""The fake server for the tests of this folder, and clients of it (the official SDKs, httpx).

``srv`` is one server per module with the default roster; a module that needs other models
defines its own ``srv`` and the clients follow it.
"""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from shadowroute.fakellm import FakeLLMServer, default_settings


@pytest.fixture(scope="module")
def srv() -> Iterator[FakeLLMServer]:
    # Tests that change behaviour create their own model names, so sharing the server is safe.
    with FakeLLMServer(default_settings(latency_scale=0.0)) as server:
        yield server


@pytest.fixture
def http(srv: FakeLLMServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.base_url) as client:
        yield client


@pytest.fixture
def oai(srv: FakeLLMServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url + "/v1", api_key="fake", max_retries=0)


@pytest.fixture
def ant(srv: FakeLLMServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=srv.base_url, api_key="fake", max_retries=0)
