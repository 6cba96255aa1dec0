"""What the job makes each client do: the scenarios, each on a model, with what its traffic must show.

Every request of a scenario carries the header `x-conformance-scenario: CLIENT/SCENARIO/MODEL`
(through ANTHROPIC_CUSTOM_HEADERS, which Claude Code reads and the SDK scripts read too), so the
proxy's report says which scenario each exchange belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.clients.versions import CLAUDE_CODE, PYTHON_SDK, TYPESCRIPT_SDK

TAG_HEADER = "x-conformance-scenario"
HAIKU = "claude-haiku-4-5"
# Claude Code run without --model: whatever model it picks by default.
DEFAULT_MODEL = "default"

# What a scenario's traffic must show, beyond "nothing refused, every check passed".
TOOL_ROUND_TRIP = "tool round trip"  # a request answering a tool call with a tool_result
THINKING = "thinking"  # an answer holding a thinking block
STREAM = "stream"  # an answer streamed as server-sent events
COUNT_TOKENS = "count_tokens"  # a request to /v1/messages/count_tokens

# A file in Claude Code's throwaway working directory, for it to read.
NOTES_FILE = "notes.txt"
NOTES_TEXT = "The clients job wrote this file.\n"


@dataclass(frozen=True)
class Scenario:
    """One run of one client: a scenario name, the model, the client's arguments and what to expect."""

    client: str
    name: str
    model: str
    expects: tuple[str, ...] = ()
    # Claude Code only: the prompt and its extra command-line arguments.
    prompt: str = ""
    arguments: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        """The value of TAG_HEADER on every request of this scenario."""
        return f"{self.client}/{self.name}/{self.model}"


def claude_code_scenarios() -> list[Scenario]:
    """A text turn, a tool round trip and thinking, on Claude Code's default model and on Haiku."""
    scenarios = []
    for model in (DEFAULT_MODEL, HAIKU):
        scenarios += [
            Scenario(CLAUDE_CODE.name, "text", model, (STREAM,), "Reply with exactly: PONG"),
            Scenario(
                CLAUDE_CODE.name,
                "tools",
                model,
                (STREAM, TOOL_ROUND_TRIP),
                f"Use the Read tool to read {NOTES_FILE}, then say what it holds.",
                ("--allowedTools", "Read"),
            ),
            Scenario(
                CLAUDE_CODE.name,
                "thinking",
                model,
                (STREAM, THINKING),
                "Think it through, then reply with exactly: PONG",
                ("--effort", "high", "--settings", '{"alwaysThinkingEnabled": true}'),
            ),
        ]
    return scenarios


# The SDK scripts' scenarios (sdk_python.py, sdk_typescript.mjs: same names, same checks).
SDK_SCENARIOS: dict[str, tuple[str, ...]] = {
    "create": (),
    "stream": (STREAM,),
    "tools": (TOOL_ROUND_TRIP,),
    "thinking": (STREAM, THINKING),
    "count_tokens": (COUNT_TOKENS,),
}


def sdk_scenarios(client: str) -> list[Scenario]:
    return [Scenario(client, name, HAIKU, expects) for name, expects in SDK_SCENARIOS.items()]


def scenarios_of(client: str) -> list[Scenario]:
    """Every scenario of a client, in the order they run."""
    if client == CLAUDE_CODE.name:
        return claude_code_scenarios()
    if client in (TYPESCRIPT_SDK.name, PYTHON_SDK.name):
        return sdk_scenarios(client)
    raise ValueError(f"no scenarios for client {client!r}")
