"""One scenario of the official Python SDK against ANTHROPIC_BASE_URL, run by the clients job with
the pinned SDK's own interpreter (so it imports nothing of this project).

    python sdk_python.py SCENARIO MODEL

The key comes from ANTHROPIC_API_KEY; ANTHROPIC_CUSTOM_HEADERS ("Name: Value" lines, as Claude
Code reads it) adds headers to every request. Exit 0 when the SDK's answer is what the scenario
expects; otherwise one line on stderr saying what went wrong, and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import anthropic

PROMPT = "Reply with exactly: PONG"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Unexpected(Exception):
    """The SDK answered, but not what the scenario expects."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


def text_of(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def create(client: anthropic.Anthropic, model: str) -> None:
    message = client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": PROMPT}])
    expect(text_of(message) == "PONG", f"create answered {text_of(message)!r}, expected 'PONG'")


def stream(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(model=model, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]) as events:
        streamed = "".join(events.text_stream)
        message = events.get_final_message()
    expect(streamed == "PONG", f"the stream's text was {streamed!r}, expected 'PONG'")
    expect(message.stop_reason == "end_turn", f"the streamed message stopped with {message.stop_reason!r}")


def tools(client: anthropic.Anthropic, model: str) -> None:
    messages: list = [{"role": "user", "content": "Use the get_weather tool for Paris."}]
    first = client.messages.create(model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=messages)
    calls = [block for block in first.content if block.type == "tool_use"]
    expect(first.stop_reason == "tool_use" and len(calls) == 1, f"expected one tool call, got {first.content!r}")
    messages += [
        {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 21 C"}]},
    ]
    with client.messages.stream(model=model, max_tokens=256, tools=[WEATHER_TOOL], messages=messages) as events:
        final = events.get_final_message()
    expect("Sunny, 21 C" in text_of(final), f"the answer to the tool result was {text_of(final)!r}")


def thinking(client: anthropic.Anthropic, model: str) -> None:
    settings = {"type": "enabled", "budget_tokens": 1024}
    messages: list = [{"role": "user", "content": PROMPT}]
    with client.messages.stream(model=model, max_tokens=2048, thinking=settings, messages=messages) as events:
        first = events.get_final_message()
    blocks = [block for block in first.content if block.type == "thinking"]
    expect(len(blocks) == 1 and bool(blocks[0].signature), f"expected one signed thinking block, got {first.content!r}")
    # The signature round trip: the thinking block goes back as it came.
    messages += [{"role": "assistant", "content": first.content}, {"role": "user", "content": PROMPT}]
    second = client.messages.create(model=model, max_tokens=2048, thinking=settings, messages=messages)
    expect(text_of(second) == "PONG", f"the turn after thinking answered {text_of(second)!r}")


def count_tokens(client: anthropic.Anthropic, model: str) -> None:
    counted = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": PROMPT}])
    expect(counted.input_tokens > 0, f"count_tokens answered {counted.input_tokens} input tokens")


SCENARIOS: dict[str, Callable[[anthropic.Anthropic, str], None]] = {
    "create": create,
    "stream": stream,
    "tools": tools,
    "thinking": thinking,
    "count_tokens": count_tokens,
}


def custom_headers(value: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in value.splitlines())
    return {name.strip(): header.strip() for name, sep, header in pairs if sep and name.strip()}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in SCENARIOS:
        print(f"usage: sdk_python.py {{{','.join(SCENARIOS)}}} MODEL", file=sys.stderr)
        return 2
    scenario, model = argv
    headers = custom_headers(os.environ.get("ANTHROPIC_CUSTOM_HEADERS", ""))
    client = anthropic.Anthropic(default_headers=headers, max_retries=0, timeout=60.0)
    try:
        SCENARIOS[scenario](client, model)
    except (Unexpected, anthropic.AnthropicError) as exc:
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    print(f"{scenario}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
