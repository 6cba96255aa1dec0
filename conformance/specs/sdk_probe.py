"""Run as a script by `conformance specs drift`: JSON Schemas of the official Python SDK's types.

`python sdk_probe.py SDK_DIR` imports `anthropic` from SDK_DIR (a `pip install --target`
folder) and prints one JSON object: the SDK's version and, for each type the drift compares, the
JSON Schema pydantic derives from it (`TypeAdapter(T).json_schema()` reads the SDK's TypedDicts
and models alike). It runs in its own interpreter so that the SDK under test never meets the one
this project may have installed; it needs only the standard library, pydantic and the SDK.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Union

# name -> the SDK type(s) it is made of: (module, attribute) pairs; several make a union.
# The first name part says where the type applies: `ga` (no beta header) or `beta`.
TYPES: dict[str, tuple[tuple[str, str], ...]] = {
    "ga.create": (
        ("anthropic.types.message_create_params", "MessageCreateParamsNonStreaming"),
        ("anthropic.types.message_create_params", "MessageCreateParamsStreaming"),
    ),
    "ga.count": (("anthropic.types.message_count_tokens_params", "MessageCountTokensParams"),),
    "ga.message": (("anthropic.types", "Message"),),
    "ga.event": (("anthropic.types", "RawMessageStreamEvent"),),
    "ga.error": (("anthropic.types", "ErrorResponse"),),
    "ga.count_response": (("anthropic.types", "MessageTokensCount"),),
    "ga.system_message": (("anthropic.types", "SystemMessageParam"),),
    "beta.create": (
        ("anthropic.types.beta.message_create_params", "MessageCreateParamsNonStreaming"),
        ("anthropic.types.beta.message_create_params", "MessageCreateParamsStreaming"),
    ),
    "beta.count": (("anthropic.types.beta.message_count_tokens_params", "MessageCountTokensParams"),),
    "beta.message": (("anthropic.types.beta", "BetaMessage"),),
    "beta.event": (("anthropic.types.beta", "BetaRawMessageStreamEvent"),),
    "beta.error": (("anthropic.types", "BetaErrorResponse"),),
    "beta.count_response": (("anthropic.types.beta", "BetaMessageTokensCount"),),
    "beta.system_message": (("anthropic.types.beta", "BetaSystemMessageParam"),),
}


def _resolve(parts: tuple[tuple[str, str], ...]) -> Any:
    found = [getattr(importlib.import_module(module), name) for module, name in parts]
    return found[0] if len(found) == 1 else Union[tuple(found)]  # noqa: UP007 - a runtime union of types


def main(sdk_dir: str) -> int:
    sys.path.insert(0, sdk_dir)
    import anthropic
    from pydantic import TypeAdapter

    schemas: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, parts in TYPES.items():
        try:
            schemas[name] = TypeAdapter(_resolve(parts)).json_schema()
        except (ImportError, AttributeError) as exc:
            missing[name] = str(exc)
    types = {name: " | ".join(attribute for _, attribute in parts) for name, parts in TYPES.items()}
    print(json.dumps({"version": anthropic.__version__, "schemas": schemas, "types": types, "missing": missing}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
