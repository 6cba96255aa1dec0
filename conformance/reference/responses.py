"""The Message object and the response headers of a successful answer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from conformance.reference import ids
from conformance.reference.scripted import Turn

ORGANIZATION_ID = "00000000-0000-4000-8000-000000000000"
REQUESTS_PER_MINUTE = 4_000
INPUT_TOKENS_PER_MINUTE = 2_000_000
OUTPUT_TOKENS_PER_MINUTE = 400_000


def build_message(params: dict[str, Any], turn: Turn, input_tokens: int) -> dict[str, Any]:
    """The complete Message of a non-streamed answer (and, emptied, of message_start)."""
    return {
        "id": ids.message_id(),
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": turn.content,
        "stop_reason": turn.stop_reason,
        "stop_sequence": turn.stop_sequence,
        "stop_details": turn.stop_details,
        "container": None,
        "usage": usage(input_tokens, turn.output_tokens, params.get("inference_geo")),
    }


def usage(input_tokens: int, output_tokens: int, inference_geo: str | None) -> dict[str, Any]:
    """Usage with every field the API reports; nothing is ever cached, no server tool runs."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": None,
        "service_tier": "standard",
        # Real answers always carry a string here: the region asked for, else "not_available".
        "inference_geo": inference_geo or "not_available",
    }


def rate_limit_headers(input_tokens: int, output_tokens: int) -> dict[str, str]:
    """The `anthropic-ratelimit-*` family, as if this request were the only one this minute."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    reset = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    limits = {
        "requests": (REQUESTS_PER_MINUTE, 1),
        "input-tokens": (INPUT_TOKENS_PER_MINUTE, input_tokens),
        "output-tokens": (OUTPUT_TOKENS_PER_MINUTE, output_tokens),
        "tokens": (INPUT_TOKENS_PER_MINUTE + OUTPUT_TOKENS_PER_MINUTE, input_tokens + output_tokens),
    }
    headers: dict[str, str] = {}
    for name, (limit, spent) in limits.items():
        headers[f"anthropic-ratelimit-{name}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(max(0, limit - spent))
        headers[f"anthropic-ratelimit-{name}-reset"] = reset
    return headers
