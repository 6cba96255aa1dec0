"""Rules that span several messages, checked once every block is known to be well formed.

- every tool_result answers a tool_use of the assistant turn just before it, and every tool_use
  that is followed by another turn is answered there;
- tool_use ids are unique;
- replayed thinking carries a signature this server made for exactly that text, and replayed
  redacted_thinking carries data this server made;
- with thinking enabled, the assistant turn whose tool calls are being answered starts with a
  thinking block;
- a final assistant message (a prefill) does not end with whitespace;
- at most four blocks carry cache_control.

Consecutive messages of the same role form one turn, as the API combines them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conformance.reference import fields as f
from conformance.reference import signing

MAX_CACHE_BREAKPOINTS = 4
THINKING_FIRST_MESSAGE = (
    "Expected `thinking` or `redacted_thinking`, but found `{found}`. When `thinking` is enabled, a final "
    "`assistant` message must start with a thinking block (preceding the lastmost set of `tool_use` and "
    "`tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this "
    "requirement, disable `thinking`."
)


def check_conversation(params: dict[str, Any]) -> None:
    messages: list[dict[str, Any]] = params["messages"]
    _check_tool_pairing(messages)
    _check_thinking_replay(messages)
    if (params.get("thinking") or {}).get("type") == "enabled":
        _check_thinking_first(messages)
    _check_prefill(messages)
    _check_cache_breakpoints(params)


def blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """A message's content as blocks (string content is one text block)."""
    content = message.get("content") or []  # a system message may carry only output_config
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _turns(messages: list[dict[str, Any]]) -> list[tuple[str, list[int]]]:
    """Indexes of messages grouped into turns of one role (system-role messages are left out)."""
    turns: list[tuple[str, list[int]]] = []
    for index, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].append(index)
        else:
            turns.append((role, [index]))
    return turns


def _blocks_of(messages: list[dict[str, Any]], indexes: list[int], kind: str) -> Iterator[tuple[int, int, dict]]:
    for index in indexes:
        for position, block in enumerate(blocks(messages[index])):
            if block.get("type") == kind:
                yield index, position, block


def _check_tool_pairing(messages: list[dict[str, Any]]) -> None:
    """Unique ids and answered results first, then calls left unanswered."""
    turns = _turns(messages)
    seen: set[str] = set()
    for number, (role, indexes) in enumerate(turns):
        if role == "assistant":
            for index, position, block in _blocks_of(messages, indexes, "tool_use"):
                if block["id"] in seen:
                    f.fail(f"messages.{index}.content.{position}", "`tool_use` ids must be unique")
                seen.add(block["id"])
        else:
            previous = turns[number - 1][1] if number > 0 else []
            offered = {block["id"] for _, _, block in _blocks_of(messages, previous, "tool_use")}
            for index, position, block in _blocks_of(messages, indexes, "tool_result"):
                if block["tool_use_id"] not in offered:
                    f.fail(
                        f"messages.{index}.content.{position}",
                        f"unexpected `tool_use_id` found in `tool_result` blocks: {block['tool_use_id']}. Each "
                        "`tool_result` block must have a corresponding `tool_use` block in the previous message.",
                    )
    for number, (role, indexes) in enumerate(turns[:-1]):
        if role == "assistant":
            _check_answered(messages, indexes, turns[number + 1][1])


def _check_answered(messages: list[dict[str, Any]], indexes: list[int], next_turn: list[int]) -> None:
    """Tool calls of an assistant turn followed by a user turn must all be answered there."""
    answered = {block["tool_use_id"] for _, _, block in _blocks_of(messages, next_turn, "tool_result")}
    for index, _, block in _blocks_of(messages, indexes, "tool_use"):
        if block["id"] not in answered:
            f.fail(
                f"messages.{index}",
                f"`tool_use` ids were found without `tool_result` blocks immediately after: {block['id']}. "
                "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            )


def _check_thinking_replay(messages: list[dict[str, Any]]) -> None:
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        for position, block in enumerate(blocks(message)):
            location = f"messages.{index}.content.{position}"
            if block["type"] == "thinking" and not signing.thinking_signature_valid(
                block["thinking"], block["signature"]
            ):
                f.fail(location, "Invalid `signature` in `thinking` block")
            if block["type"] == "redacted_thinking" and not signing.redacted_data_valid(block["data"]):
                f.fail(location, "Invalid `data` in `redacted_thinking` block")


def _check_thinking_first(messages: list[dict[str, Any]]) -> None:
    """The assistant turn answered by the final tool_results must open with thinking."""
    turns = _turns(messages)
    if len(turns) < 2 or turns[-1][0] != "user":
        return
    if not any(_blocks_of(messages, turns[-1][1], "tool_result")):
        return
    first_index = turns[-2][1][0]
    first_blocks = blocks(messages[first_index])
    found = first_blocks[0]["type"] if first_blocks else "nothing"
    if found not in ("thinking", "redacted_thinking"):
        f.fail(f"messages.{first_index}.content.0.type", THINKING_FIRST_MESSAGE.format(found=found))


def _check_prefill(messages: list[dict[str, Any]]) -> None:
    last = messages[-1]
    if last["role"] != "assistant":
        return
    content = blocks(last)
    if content and content[-1]["type"] == "text" and content[-1]["text"] != content[-1]["text"].rstrip():
        f.fail("messages", "final assistant content cannot end with trailing whitespace")


def _check_cache_breakpoints(params: dict[str, Any]) -> None:
    count = sum(1 for block in _cacheable(params) if block.get("cache_control") is not None)
    if count > MAX_CACHE_BREAKPOINTS:
        f.fail("", f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {count}.")


def _cacheable(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from params.get("tools") or []
    system = params.get("system")
    if isinstance(system, list):
        yield from system
    for message in params["messages"]:
        for block in blocks(message):
            yield block
            if block["type"] == "tool_result" and isinstance(block.get("content"), list):
                yield from block["content"]
