"""Record ids: UUIDv7 (time first), so rows written together sit together in the store's
indexes and ids sort by the time they were made; still unique and made client-side."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from shadowroute.records import CandidateOutputRecord, ExchangeRecord, new_id


def test_an_id_is_a_uuid7_in_32_hex_digits_carrying_its_time() -> None:
    at = datetime(2026, 12, 5, 21, 0, 0, 123000, tzinfo=UTC)
    made = new_id(at)
    assert len(made) == 32 and made == made.lower() and int(made, 16) >= 0
    parsed = uuid.UUID(made)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(made[:12], 16) == int(at.timestamp() * 1000)


def test_ids_sort_by_time_and_stay_unique_within_a_millisecond() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    spaced = [new_id(start + timedelta(milliseconds=i)) for i in range(2000)]
    assert spaced == sorted(spaced) and len(set(spaced)) == len(spaced)
    same = [new_id(start) for _ in range(50_000)]
    assert len(set(same)) == len(same)
    assert all(s[:12] == same[0][:12] for s in same)  # the rest is random, not a counter
    assert len({s[13:16] for s in same}) > 1000


def test_records_made_later_get_larger_ids() -> None:
    first = ExchangeRecord("t", "m", {"messages": []}, "a")
    time.sleep(0.002)
    second = ExchangeRecord("t", "m", {"messages": []}, "a")
    time.sleep(0.002)
    output = CandidateOutputRecord(second.id, "mini", "a")
    assert first.id < second.id < output.id
