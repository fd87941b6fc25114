"""The ``extract_order`` simulator: free text about an order -> a JSON object.

Wrong answers are the kinds a scorer must catch: a field with a wrong value (most often), a
missing field, a wrong type, or (rarely) text that is not valid JSON at all. Under structured
output (a JSON schema in the request) only the first kind remains.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from ._base import TaskSimulator
from ._vocab import NAMES, fill

__all__ = ["EXTRACT_ORDER_SCHEMA", "ExtractOrder"]

EXTRACT_ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": r"^[A-Z]{2}-\d{5}$"},
        "quantity": {"type": "integer", "minimum": 1},
        "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
        "priority": {"enum": ["low", "normal", "high"]},
    },
    "required": ["order_id", "quantity", "email", "priority"],
    "additionalProperties": False,
}
"""JSON schema of a correct ``extract_order`` answer (for the demo's scorer config)."""

_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve")
_LAST_NAMES = ("lopez", "smith", "tanaka", "silva", "sharma", "haddad", "rossi", "meyer")
_DOMAINS = ("example.com", "mail.test", "acme.example", "shop.test")
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_ITEMS = ("boxes of printer paper", "ergonomic chairs", "USB-C cables", "monitor stands",
          "packs of AA batteries", "desk lamps")
_PRIORITY_SENTENCES = {
    "high": ("This is urgent.", "We need these as soon as possible.", "Please treat this as ASAP.",
             "Please rush this, the event is on {day}."),
    "low": ("No rush at all.", "Whenever you get to it is fine.", "We are not in a hurry."),
    "normal": ("", "Thanks in advance.", "Let me know if you need anything else."),
}
_TEMPLATES = (
    "Hi, I'd like to add {qty} {items} to order {oid}. Please send the confirmation to {email}. "
    "{prio}",
    "Order {oid}: please change the quantity to {qty}. {prio} You can reach me at {email}.",
    "{prio} Can you update order {oid} so it has {qty} {items}? My email is {email}.",
    "Hello, {name} here ({email}). For order {oid} we need {qty} {items} in total. {prio}",
)

_OID = re.compile(r"\b[A-Z]{2}-\d{5}\b")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_QTY = re.compile(r"\b(\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_LOW = re.compile(r"\bno rush\b|\bwhenever\b|\bnot in a hurry\b", re.I)
_HIGH = re.compile(r"\burgent|\basap\b|\bas soon as possible\b|\brush\b", re.I)


class ExtractOrder(TaskSimulator):
    name = "extract_order"
    instructions = (
        "Extract the order from the customer's message. Answer with a JSON object only: "
        '{"order_id": string, "quantity": integer, "email": string, '
        '"priority": "low" | "normal" | "high"}. Priority is high when the customer says it is '
        "urgent, low when there is no rush, normal otherwise."
    )
    max_tokens = 64

    def generate(self, rng: random.Random) -> tuple[str, str]:
        name = rng.choice(NAMES)
        oid = f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}-{rng.randint(10000, 99999)}"
        qty = rng.randint(1, 12)
        qty_text = _NUMBER_WORDS[qty - 1] if rng.random() < 0.3 else str(qty)
        email = f"{name.lower()}.{rng.choice(_LAST_NAMES)}{rng.randint(1, 99)}@{rng.choice(_DOMAINS)}"
        priority = rng.choice(("low", "normal", "normal", "high"))
        prio = fill(rng.choice(_PRIORITY_SENTENCES[priority]), rng)
        text = rng.choice(_TEMPLATES).format(
            qty=qty_text, items=rng.choice(_ITEMS), oid=oid, email=email, prio=prio, name=name
        )
        text = re.sub(r"\s+", " ", text).strip()
        truth = {"order_id": oid, "quantity": qty, "email": email, "priority": priority}
        return text, json.dumps(truth)

    @staticmethod
    def parse(text: str) -> dict[str, Any]:
        """The fields a perfect extractor finds in ``text`` (None when absent)."""
        oid = _OID.search(text)
        email = _EMAIL.search(text)
        without_ids = _EMAIL.sub(" ", _OID.sub(" ", text))
        qty_match = _QTY.search(without_ids)
        qty: int | None = None
        if qty_match:
            raw = qty_match.group(1).lower()
            qty = int(raw) if raw.isdigit() else _NUMBER_WORDS.index(raw) + 1
        if _LOW.search(text):
            priority = "low"
        elif _HIGH.search(text):
            priority = "high"
        else:
            priority = "normal"
        return {
            "order_id": oid.group(0) if oid else None,
            "quantity": qty,
            "email": email.group(0) if email else None,
            "priority": priority,
        }

    def expected(self, text: str) -> str:
        return json.dumps(self.parse(text))

    def wrong(self, text: str, rng: random.Random) -> str:
        data = self.parse(text)
        roll = rng.random()
        if roll < 0.55:
            field = rng.choice([k for k, v in data.items() if v is not None])
            data[field] = _alter(field, data[field], rng)
        elif roll < 0.80 or data["quantity"] is None:
            del data[rng.choice(list(data))]
        elif roll < 0.90:
            data["quantity"] = str(data["quantity"])
        else:
            return _malformed(data, rng)
        return json.dumps(data)

    def wrong_structured(self, text: str, rng: random.Random) -> str:
        """Under a JSON schema the answer always fits: only a value can be wrong."""
        data = self.parse(text)
        present = [k for k, v in data.items() if v is not None]
        if present:
            field = rng.choice(present)
            data[field] = _alter(field, data[field], rng)
        return json.dumps(data)


def _alter(field: str, value: Any, rng: random.Random) -> Any:
    if field == "order_id":
        pos = rng.randrange(3, len(value))
        digit = rng.choice([d for d in "0123456789" if d != value[pos]])
        return value[:pos] + digit + value[pos + 1:]
    if field == "quantity":
        return rng.choice([value + 1, value * 10] + ([value - 1] if value > 1 else []))
    if field == "email":
        local, _, domain = value.partition("@")
        if rng.random() < 0.5:
            return f"{local}@{rng.choice([d for d in _DOMAINS if d != domain])}"
        return f"{local[:-1] or 'x'}@{domain}"
    return rng.choice([p for p in ("low", "normal", "high") if p != value])


def _malformed(data: dict[str, Any], rng: random.Random) -> str:
    good = json.dumps(data)
    kind = rng.randrange(3)
    if kind == 0:
        return good[: rng.randrange(len(good) // 3, len(good) - 1)]
    if kind == 1:
        return str(data)  # Python repr: single quotes, None
    return f"Sure! Here is the extracted order:\n{good}\nLet me know if you need anything else."
