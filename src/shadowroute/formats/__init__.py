"""Wire formats: the canonical request/response shape and the translations at the edges.

The OpenAI chat-completions shape is the lingua franca inside shadowroute (:mod:`.chat`: what a
stored answer is, tool calls included, and what it cost); the Anthropic Messages API
(:mod:`.anthropic`) and the OpenAI Responses API (:mod:`.responses`) are translated both ways;
captured SSE streams of all three are reassembled into one canonical response (:mod:`.sse`).
Pure functions, no I/O: anything that is not a usable request, stream or response raises
:class:`ValueError` with a clear message, and a call that depends on state the provider keeps
raises :class:`~.chat.NotShadowable`. Settings a target API cannot carry are named in the
``dropped`` list a translation is given, never silently lost. A new provider API is one module
here (request and response translation) plus its stream reassembly in :mod:`.sse`.
"""

from .anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from .chat import (
    ANTHROPIC_ONLY,
    Answer,
    NotShadowable,
    chat_request,
    completion_text,
    completion_usage,
    parse_answer,
)
from .responses import (
    openai_request_to_responses,
    responses_request_to_openai,
    responses_response_to_openai,
)
from .sse import reassemble

__all__ = [
    "ANTHROPIC_ONLY",
    "Answer",
    "NotShadowable",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "chat_request",
    "completion_text",
    "completion_usage",
    "openai_request_to_anthropic",
    "openai_request_to_responses",
    "parse_answer",
    "reassemble",
    "responses_request_to_openai",
    "responses_response_to_openai",
]
