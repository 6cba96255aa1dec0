"""The official Python SDK making many recorded calls in one process, run by `conformance impact`
with the pinned SDK's own interpreter (so it imports nothing of this project).

    python replay_python.py CALLS.json

CALLS.json is a list of {"key", "base_url", "path", "stream", "body"}; each call is made against
its own base URL (the replay server answers it with what the target once answered), and one JSON
line per call goes to stdout: {"key", "message"} when the SDK returned something, {"key", "error",
"status"} when it raised. `message` is what the SDK made of the answer: text, tool calls,
stop_reason and usage (or input_tokens for count_tokens).
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import anthropic

TIMEOUT = 10.0
# What a call needs to be made at all; the replay answers whatever is sent.
PLACEHOLDERS = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "Hello."}]}


def arguments(method: Any, body: Any) -> dict[str, Any]:
    """The body as keyword arguments of `method`: what it does not name goes in extra_body."""
    body = dict(body) if isinstance(body, dict) else {}
    body.pop("stream", None)
    named = set(inspect.signature(method).parameters)
    kwargs = {name: value for name, value in body.items() if name in named}
    extra = {name: value for name, value in body.items() if name not in named}
    for name, value in PLACEHOLDERS.items():
        if name in named and name not in kwargs:
            kwargs[name] = value
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


def summary(message: anthropic.types.Message) -> dict[str, Any]:
    usage = message.usage
    return {
        "text": "".join(block.text for block in message.content if block.type == "text"),
        "tools": [{"name": block.name, "input": block.input} for block in message.content if block.type == "tool_use"],
        "stop_reason": message.stop_reason,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens} if usage else None,
    }


def call(client: anthropic.Anthropic, path: str, stream: bool, body: Any) -> dict[str, Any]:
    messages = client.messages
    if path.endswith("/count_tokens"):
        return {"input_tokens": messages.count_tokens(**arguments(messages.count_tokens, body)).input_tokens}
    if stream:
        with messages.stream(**arguments(messages.stream, body)) as events:
            return summary(events.get_final_message())
    return summary(messages.create(**arguments(messages.create, body)))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: replay_python.py CALLS.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        calls = json.load(handle)
    for each in calls:
        client = anthropic.Anthropic(base_url=each["base_url"], api_key="replay", max_retries=0, timeout=TIMEOUT)
        try:
            line: dict[str, Any] = {
                "key": each["key"],
                "message": call(client, each["path"], each["stream"], each["body"]),
            }
        except Exception as exc:  # whatever the SDK raises is the observation
            status = getattr(exc, "status_code", None)
            line = {"key": each["key"], "error": f"{type(exc).__name__}: {exc}", "status": status}
        print(json.dumps(line, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
