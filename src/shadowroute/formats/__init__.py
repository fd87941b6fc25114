"""Wire formats: the canonical request/response shape and the translations at the edges.

The OpenAI chat-completions shape is the lingua franca inside shadowroute (:mod:`.chat`); the
Anthropic Messages API is translated both ways (:mod:`.anthropic`); captured SSE streams are
reassembled into one canonical response (:mod:`.sse`). Pure functions, no I/O: anything that is
not a usable request, stream or response raises :class:`ValueError` with a clear message.
A new provider API is one module here (request and response translation) plus its stream
reassembly in :mod:`.sse`.
"""

from .anthropic import (
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
)
from .chat import completion_text, completion_usage
from .sse import reassemble

__all__ = [
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "completion_text",
    "completion_usage",
    "openai_request_to_anthropic",
    "reassemble",
]
