"""What redaction costs per stored exchange (in the mirror worker, off the request path):
no redactors (the baseline, the tree walk alone), the default ``api_key``, and all built-ins.

    .venv/bin/python bench/redaction_cost.py
"""

from __future__ import annotations

import time

from shadowroute.config import load_config
from shadowroute.records import CandidateOutputRecord, ExchangeRecord
from shadowroute.store.redaction import Redactor

EXCHANGES = 20_000
TEXT = "Hello, I ordered a blue kettle last week and it has not arrived yet. " * 12


def exchange(secret: bool) -> ExchangeRecord:
    user = TEXT + (" my key is sk-proj-abcdefghijklmnopqrstuvwxyz012345" if secret else "")
    x = ExchangeRecord(task_type="t", primary_model="m", request={"model": "m", "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": user}]},
        primary_output="shipping")
    x.outputs.append(CandidateOutputRecord(x.id, "small", output="shipping"))
    return x


def per_exchange_us(redactor: Redactor, secret: bool) -> float:
    records = [exchange(secret) for _ in range(EXCHANGES)]
    began = time.perf_counter()
    for record in records:
        redactor.redact_exchange(record)
    return (time.perf_counter() - began) / EXCHANGES * 1e6


def main() -> None:
    baseline = per_exchange_us(Redactor(()), secret=False)
    print(f"no redactors (baseline): {baseline:.1f} us per exchange (~{len(TEXT)} chars)")
    for names in (["api_key"], ["api_key", "email", "phone", "card"]):
        redactor = Redactor.from_config(load_config(data={"redaction": {"redactors": names}}).redaction)
        clean = per_exchange_us(redactor, secret=False)
        dirty = per_exchange_us(redactor, secret=True)
        print(f"{', '.join(names)}: {clean:.1f} us per exchange with nothing to redact "
              f"(x{clean / baseline:.1f} the baseline), {dirty:.1f} us with a key to redact")


if __name__ == "__main__":
    main()
