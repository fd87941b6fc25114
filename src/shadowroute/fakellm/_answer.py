"""From a parsed request to the simulated answer: choices, tool calls, thinking, tokens, limits.

:func:`build_completion` is API independent (the renderers in ``_openai.py``, ``_anthropic.py``
and ``_responses.py`` shape its result). Per choice: the judge's reply for a judge prompt, else
:func:`~shadowroute.fakellm.tasks.simulate` (choice ``i`` of ``n`` is drawn as repeat
``first + i`` of the request, so choices differ when the model's ``consistency`` is below 1). A
model with a ``refusal_rate`` refuses some requests (the same ones every time), and one
with ``abstain`` on a task says "I don't know." instead of some of its wrong answers. A
``tool_choice`` that forces a call the simulator did not make gets one, to the forced (or first)
tool, with arguments built from its parameter schema. A reasoning model asked to reason thinks
first (``_thinking.py``). The token limit covers reasoning, then text, then tool calls: what does
not fit is cut (a call's arguments mid-JSON) and the choice is truncated. Token counts are
``ceil(chars / 4)``; the prompt counts its message contents, plus the tools and earlier tool
calls when there are any.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict

from ._judge import JUDGE_TASK, JudgePrompt, judge_reply
from ._schema import instance_for
from ._state import FakeState
from ._thinking import reasoning_tokens, signature, summary_of, thinking_text
from ._wire import Api, Ask, Choice, Completion, ToolCallOut, tool_messages_text
from .models import ABSTAIN_TEXT, REFUSAL_TEXT, FakeModel
from .tasks import count_tokens, last_user_text, request_rng, simulate

__all__ = ["build_completion"]


def build_completion(state: FakeState, model: FakeModel, ask: Ask, *, api: Api, call_id: str,
                     task: str, judge: JudgePrompt | None) -> Completion:
    """The answer of ``model`` to ``ask`` (counts the request's repeats in ``state``)."""
    first = 0 if judge is not None else state.repeat_index(model.name, ask.messages, ask.n)
    choices = [_choice(state, model, ask, api=api, call_id=call_id, task=task, judge=judge,
                       repeat=first + i, number=i) for i in range(ask.n)]
    return Completion(id=call_id, model=model.name, created=int(time.time()),
                      prompt_tokens=_prompt_tokens(ask), choices=choices)


def _prompt_tokens(ask: Ask) -> int:
    tokens = count_tokens("\n".join(str(m["content"]) for m in ask.messages))
    if ask.tools:
        tokens += count_tokens(json.dumps([asdict(t) for t in ask.tools]))
    calls = tool_messages_text(ask.messages)
    return tokens + (count_tokens(calls) if calls else 0)


def _choice(state: FakeState, model: FakeModel, ask: Ask, *, api: Api, call_id: str, task: str,
            judge: JudgePrompt | None, repeat: int, number: int) -> Choice:
    calls: list[tuple[str, str]] = []
    if judge is not None:
        text = judge_reply(judge, seed=state.seed, model=model.name,
                           accuracy=model.accuracy_for(JUDGE_TASK),
                           garbage_rate=model.verdict_garbage_rate,
                           n_messages=len(ask.messages))
    else:
        answer = simulate(
            ask.messages, seed=state.seed, model=model.name, accuracy=model.accuracy_for(task),
            repeat=repeat, consistency=model.consistency,
            tools=[t.name for t in ask.tools] if ask.tools else None,
            tool_choice=ask.tool_choice, parallel_tool_calls=ask.parallel_tool_calls,
            preamble=model.tool_preamble, json_mode=ask.json_mode, json_schema=ask.schema,
        )
        text = answer.text
        calls = [(c.name, _json(c.arguments)) for c in answer.tool_calls]
        abstain = model.abstain.get(answer.task, 0.0)
        if not calls and not answer.correct and abstain and request_rng(
                state.seed, model.name, ask.messages, "abstain").random() < abstain:
            text = ABSTAIN_TEXT
        if not calls and model.refusal_rate and request_rng(
                state.seed, model.name, ask.messages, "refusal").random() < model.refusal_rate:
            text = REFUSAL_TEXT
        if not calls and ask.tools and ask.tool_choice not in ("auto", "none"):
            spec = next((t for t in ask.tools if t.name == ask.tool_choice), ask.tools[0])
            hint = last_user_text(ask.messages)
            text, calls = "", [(spec.name, _json(instance_for(spec.parameters or {}, hint)))]

    choice = Choice(text=text)
    asked = ask.thinking is not None or ask.effort not in (None, "none")
    if model.reasoning and asked and judge is None:
        thought = thinking_text(ask.messages, text, calls)
        choice.reasoned = True
        if ask.thinking is not None:
            if ask.thinking.budget is not None:
                thought = thought[: ask.thinking.budget * 4]
            choice.reasoning_tokens = count_tokens(thought)
            choice.thinking = "" if ask.thinking.display == "omitted" else thought
            choice.signature = signature(thought, model.name)
        else:
            choice.reasoning_tokens = reasoning_tokens(thought, ask.effort)
            choice.summary = summary_of(thought) if ask.reasoning_summary else None
    _fit(choice, calls, ask.limit)
    prefix = "toolu" if api == "anthropic" else "call"
    for k, out in enumerate(choice.tool_calls):
        digest = hashlib.sha256(f"{call_id}:{number}:{k}".encode()).hexdigest()[:24]
        choice.tool_calls[k] = ToolCallOut(f"{prefix}_{digest}", out.name, out.arguments)
    return choice


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fit(choice: Choice, calls: list[tuple[str, str]], limit: int | None) -> None:
    """Cut ``choice`` (and its ``calls``) to ``limit`` tokens; sets its tokens and calls."""
    left = limit if limit is not None else 1 << 60
    if choice.reasoning_tokens >= left:  # the reasoning ate the whole budget
        choice.reasoning_tokens, choice.text, choice.truncated = left, "", True
        choice.output_tokens = left
        return
    left -= choice.reasoning_tokens
    if count_tokens(choice.text) > left:
        choice.text, choice.truncated = choice.text[: left * 4].rstrip(), True
        calls = []
    left -= count_tokens(choice.text)
    for name, arguments in calls:
        cost = count_tokens(name + arguments)
        if cost > left:
            choice.truncated = True
            if left > count_tokens(name):  # room for the name and part of the arguments
                cut = arguments[: (left - count_tokens(name)) * 4]
                choice.tool_calls.append(ToolCallOut("", name, cut))
            break
        choice.tool_calls.append(ToolCallOut("", name, arguments))
        left -= cost
    choice.output_tokens = (choice.reasoning_tokens + count_tokens(choice.text)
                            + sum(count_tokens(c.name + c.arguments) for c in choice.tool_calls))
