"""Capture: a production call becomes a :class:`Capture`, cheaply, on the request path.

The stage promises two things: it never blocks the primary call and never raises into it.
:mod:`.calls` recognises a chat call and decides sampling in microseconds; :mod:`.capture`
holds what production did (references or raw bytes) and makes it canonical later, off the
request path, in a worker; :mod:`.transport` tees the OpenAI/Anthropic SDKs' httpx traffic;
:mod:`.remote` forwards captures to a sidecar instead of mirroring them in-process.
The queue and the workers that consume captures are the next stage, :mod:`shadowroute.pipeline`.
"""

from .calls import Api, api_for, is_sampled, model_from_body, request_key, snapshot_request
from .capture import Capture, decode_body

__all__ = [
    "Api",
    "Capture",
    "api_for",
    "decode_body",
    "is_sampled",
    "model_from_body",
    "request_key",
    "snapshot_request",
]
