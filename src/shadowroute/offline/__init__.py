"""Offline: evaluate candidates on traffic that was logged rather than shadowed live.

:mod:`.importer` (``shadowroute import``) stores logged calls (chat JSONL, the OpenAI Batch API,
the GenAI spans of an OTLP/JSON trace export: :mod:`.otel`) as exchanges; :mod:`.replay`
(``shadowroute replay``) calls candidates over stored exchanges through the same mirror policy,
resumably, so scoring and the report treat them like mirrored pairs.
"""

from .importer import ImportReport, import_file
from .otel import span_exchange_id
from .replay import Replay, ReplayReport, replay

__all__ = ["ImportReport", "Replay", "ReplayReport", "import_file", "replay", "span_exchange_id"]
