"""The ``lookup_order`` simulator: a support agent that calls tools, then answers from their results.

The request declares function tools (``get_order(order_id)``, ``get_shipping(order_id)``; see
:data:`LOOKUP_TOOLS`) and a user message naming one or two order ids (``AB-12345``). The right
behaviour is a pure function of the conversation:

* **call turn** -- for every order id in the last user message that has no tool result yet, call
  the right tool (``get_shipping`` when the customer asks where the parcel is, ``get_order``
  otherwise) with ``{"order_id": id}``; two ids give two parallel calls (one per turn when
  parallel calls are off);
* **answer turn** -- once every id has a result, answer in text, restating each result
  ("Order AB-12345: status in transit, carrier DHL, ...");
* a message without an order id gets a question back; a request without the tools (or with
  ``tool_choice`` ``"none"``) gets a text answer saying the model cannot look orders up.

A wrong call turn (probability ``1 - accuracy``) calls the other tool, gets an argument wrong,
misses one of two calls or answers without calling anything; a wrong answer turn misstates or
drops a result. Messages are canonical (see ``fakellm/_wire.py``): an assistant message may
carry ``tool_calls`` (``[{"name", "arguments"}]``), a ``tool`` message carries the ``name`` and
``arguments`` of the call it answers. :func:`tool_result` gives the data a client's tools can
return (deterministic per order id), so tests can play whole conversations.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._base import task_marker
from ._vocab import NAMES, PRODUCTS

__all__ = ["LOOKUP_TOOLS", "LookupOrder", "ToolCall", "ToolTurn", "tool_result"]

LOOKUP_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_order",
            "description": "Look up an order: its items, total and status.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string",
                                            "description": "The order id, e.g. AB-12345."}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_shipping",
            "description": "Where an order's parcel is: carrier, status, tracking number, ETA.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string",
                                            "description": "The order id, e.g. AB-12345."}},
                "required": ["order_id"],
                "additionalProperties": False,
            },
        },
    },
]
"""The task's tools in OpenAI chat ``tools`` format (the demo request declares these)."""

_OID = re.compile(r"\b[A-Z]{2}-\d{5}\b")
_SHIPPING = re.compile(r"\b(where|arriv\w*|deliver\w*|shipp\w*|tracking|parcel|package|"
                       r"courier)\b", re.IGNORECASE)
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_CARRIERS = ("DHL", "UPS", "FedEx", "La Poste", "Royal Mail")
_SHIP_STATUS = ("label created", "in transit", "out for delivery", "delivered")
_ORDER_STATUS = ("processing", "shipped", "delivered", "cancelled")
_SHIPPING_ASKS = (
    "Hi, where is my order {ids}? It still has not arrived.",
    "My package for {ids} was supposed to be delivered {day}. Where is it?",
    "Can you check the tracking for {ids}, please? {name}",
)
_ORDER_ASKS = (
    "Hello, can you tell me what is in order {ids}? I do not remember what I picked.",
    "Please check order {ids} for me, I think the total is wrong.",
    "What is the status of {ids}? Thanks, {name}",
)
_DAYS = ("yesterday", "on Monday", "last week")
PREAMBLE = "Let me look that up."
"""The short text some models put before their tool calls (see ``FakeModel.tool_preamble``)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call of a simulated answer."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolTurn:
    """What the model does in one turn: tool calls (maybe after some text) or a text answer."""

    text: str
    calls: tuple[ToolCall, ...] = ()


def tool_result(name: str, arguments: Mapping[str, Any]) -> str:
    """The JSON a client's ``get_order`` / ``get_shipping`` returns (deterministic per id)."""
    oid = str(arguments.get("order_id", ""))
    rng = random.Random(int.from_bytes(hashlib.sha256(f"{name}:{oid}".encode()).digest()[:8],
                                       "big"))
    if not _OID.fullmatch(oid):
        return json.dumps({"error": f"order {oid!r} not found"})
    if name == "get_shipping":
        return json.dumps({
            "order_id": oid, "carrier": rng.choice(_CARRIERS),
            "status": rng.choice(_SHIP_STATUS),
            "tracking_number": f"TRK{rng.randint(10**8, 10**9 - 1)}",
            "estimated_delivery": f"2025-06-{rng.randint(1, 28):02d}",
        })
    return json.dumps({
        "order_id": oid, "status": rng.choice(_ORDER_STATUS),
        "items": [{"name": rng.choice(PRODUCTS), "quantity": rng.randint(1, 3)}],
        "total": f"${rng.randint(10, 400)}.{rng.choice(('00', '49', '99'))}",
    })


def _last_user(messages: Sequence[Mapping[str, Any]]) -> int:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            return i
    return -1


class LookupOrder:
    """The tool-calling task type (not a :class:`TaskSimulator`: its answers are turns)."""

    name = "lookup_order"
    instructions = (
        "You are a support agent for an online shop. Use the tools to look up the customer's "
        "orders (get_order for contents and totals, get_shipping for delivery questions), then "
        "answer briefly with what you found."
    )
    max_tokens = 300
    tools = LOOKUP_TOOLS
    tool_names = ("get_order", "get_shipping")

    @property
    def system_prompt(self) -> str:
        return f"{task_marker(self.name)} {self.instructions}"

    # --- requests --------------------------------------------------------------------------
    def generate(self, rng: random.Random) -> tuple[str, str]:
        """A user message and its ground truth: the JSON list of the calls it should get."""
        ids = [f"{rng.choice(_LETTERS)}{rng.choice(_LETTERS)}-{rng.randint(10000, 99999)}"
               for _ in range(rng.choice((1, 2)))]
        joined = " and ".join(ids)
        pool = _SHIPPING_ASKS if rng.random() < 0.5 else _ORDER_ASKS
        text = rng.choice(pool).format(ids=joined, day=rng.choice(_DAYS), name=rng.choice(NAMES))
        return text, self.expected(text)

    def expected(self, text: str) -> str:
        calls = self.expected_calls(text)
        return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])

    def expected_calls(self, text: str) -> list[ToolCall]:
        tool = "get_shipping" if _SHIPPING.search(text) else "get_order"
        ids = list(dict.fromkeys(_OID.findall(text)))
        return [ToolCall(tool, {"order_id": oid}) for oid in ids]

    def make_request(self, rng: random.Random) -> dict[str, Any]:
        """An OpenAI chat request body without ``model``, declaring :data:`LOOKUP_TOOLS`."""
        text, _ = self.generate(rng)
        return {
            "messages": [
                {"role": "system", "content": self.system_prompt},
                {"role": "user", "content": text},
            ],
            "tools": json.loads(json.dumps(self.tools)),
            "max_tokens": self.max_tokens,
            "temperature": 0,
        }

    # --- answers ----------------------------------------------------------------------------
    def turn(
        self,
        messages: Sequence[Mapping[str, Any]],
        rng: random.Random,
        *,
        correct: bool,
        tools: Sequence[str] | None,
        tool_choice: str = "auto",
        parallel: bool = True,
    ) -> ToolTurn:
        """The model's turn. ``tools``: the declared function names (None: no tools declared);
        ``tool_choice``: ``"auto"``, ``"none"``, ``"required"`` or a function name."""
        start = _last_user(messages)
        user = str(messages[start].get("content") or "") if start >= 0 else ""
        results = [m for m in messages[start + 1:] if m.get("role") == "tool"]
        done = {(m.get("name"), str((m.get("arguments") or {}).get("order_id")))
                for m in results if isinstance(m.get("arguments"), Mapping)}
        usable = [t for t in self.tool_names if tools is not None and t in tools]
        if tool_choice not in ("auto", "required"):  # "none", or one function by name
            usable = [tool_choice] if tool_choice in usable else []
        pending = [c for c in self.expected_calls(user)
                   if (c.name, c.arguments["order_id"]) not in done]
        forced = tool_choice not in ("auto", "none")
        if forced and usable and not pending:  # made to call again: looks the orders up again
            pending = self.expected_calls(user) or [ToolCall(usable[0], {"order_id": ""})]
        if pending and usable:
            return self._call(pending, usable, rng, correct=correct, parallel=parallel,
                              forced=forced)
        if results:
            return ToolTurn(self._answer(results, rng, correct=correct))
        if not _OID.search(user):
            return ToolTurn("Which order is this about? Please send me the order number; "
                            "it looks like AB-12345.")
        return ToolTurn("I cannot look up orders right now. You can check the order status "
                        "on the website under My orders.")

    def _call(self, pending: list[ToolCall], usable: list[str], rng: random.Random, *,
              correct: bool, parallel: bool, forced: bool) -> ToolTurn:
        calls = [c if c.name in usable else ToolCall(usable[0], c.arguments) for c in pending]
        if not correct:
            calls = self._wrong_calls(calls, usable, rng, forced=forced)
        if not calls:
            return ToolTurn("I'm sorry, I can't see the details of that order from here.")
        return ToolTurn("", tuple(calls if parallel else calls[:1]))

    @staticmethod
    def _wrong_calls(calls: list[ToolCall], usable: list[str], rng: random.Random, *,
                     forced: bool) -> list[ToolCall]:
        roll = rng.random()
        others = [t for t in usable if t != calls[0].name]
        if roll < 0.35 and others:
            return [ToolCall(others[0], c.arguments) for c in calls]
        if roll < 0.55 and len(calls) > 1:
            return calls[: len(calls) - 1]
        if roll < 0.65 and not forced:
            return []
        i = rng.randrange(len(calls))
        oid = str(calls[i].arguments["order_id"])
        if len(oid) > 3:
            pos = rng.randrange(3, len(oid))
            digit = rng.choice([d for d in "0123456789" if d != oid[pos]])
            oid = oid[:pos] + digit + oid[pos + 1:]
        else:
            oid += "1"
        bad = ToolCall(calls[i].name, {"order_id": oid})
        return calls[:i] + [bad] + calls[i + 1:]

    def _answer(self, results: Sequence[Mapping[str, Any]], rng: random.Random, *,
                correct: bool) -> str:
        facts = [_facts(m) for m in results]
        if not correct:
            roll = rng.random()
            if roll < 0.4 and len(facts) > 1:
                facts.pop(rng.randrange(len(facts)))
            else:
                _, fields = facts[rng.randrange(len(facts))]
                if fields:
                    key = rng.choice(list(fields))
                    fields[key] = _misstate(key, fields[key], rng)
                else:
                    fields["status"] = "delivered"
        sentences = [f"Order {oid}: " + (", ".join(f"{k.replace('_', ' ')} {v}"
                                                   for k, v in fields.items()) or "no details")
                     + "." for oid, fields in facts]
        return "Here is what I found. " + " ".join(sentences)


def _facts(message: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    args = message.get("arguments") if isinstance(message.get("arguments"), Mapping) else {}
    content = str(message.get("content") or "")
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    oid = str((args or {}).get("order_id")
              or (data.get("order_id") if isinstance(data, dict) else None) or "?")
    if not isinstance(data, dict):
        return oid, {"result": " ".join(content.split())[:200]} if content else {}
    fields: dict[str, str] = {}
    for key, value in data.items():
        if key == "order_id":
            continue
        if isinstance(value, list):
            value = "; ".join(
                f"{v.get('quantity', 1)} x {v.get('name', '?')}" if isinstance(v, dict) else str(v)
                for v in value)
        fields[key] = str(value)
    return oid, fields


def _misstate(key: str, value: str, rng: random.Random) -> str:
    pools = {"status": _SHIP_STATUS + _ORDER_STATUS, "carrier": _CARRIERS}
    choices = [v for v in pools.get(key, ()) if v != value]
    if choices:
        return rng.choice(choices)
    return value[:-1] + ("7" if value[-1:] != "7" else "3") if value else "unknown"
