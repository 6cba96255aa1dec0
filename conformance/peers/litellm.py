"""LiteLLM's proxy as a peer under test: a pinned install in its own virtualenv, a config written
here, and two routes to judge — pass-through to the reference server through LiteLLM's
`anthropic/` provider, and translation to the scripted OpenAI backend through its `openai/`
provider (Anthropic <-> OpenAI, as most LiteLLM users run it)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import yaml

from conformance.peers.process import LOOPBACK, LoopbackServer, free_port

VERSION = "1.106.2"
REQUIREMENT = f"litellm[proxy]=={VERSION}"
PASS_THROUGH_MODEL = "ref-passthrough"
TRANSLATION_MODEL = "ref-translation"
STARTUP_TIMEOUT = 90.0


def config(reference_url: str, reference_key: str, openai_url: str) -> dict:
    """The proxy config: both routes, drop_params as users commonly set it, the master key from
    the environment, and no cooldowns (a route under test must not be benched by its failures)."""
    return {
        "model_list": [
            {
                "model_name": PASS_THROUGH_MODEL,
                "litellm_params": {
                    "model": "anthropic/claude-haiku-4-5",
                    "api_base": reference_url,
                    "api_key": reference_key,
                },
            },
            {
                "model_name": TRANSLATION_MODEL,
                "litellm_params": {"model": "openai/scripted", "api_base": openai_url + "/v1", "api_key": "unused"},
            },
        ],
        "litellm_settings": {"drop_params": True, "use_chat_completions_url_for_anthropic_messages": True},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
        "router_settings": {"disable_cooldowns": True},
    }


class LiteLLMProxy(LoopbackServer):
    """The proxy on a free loopback port, with a random master key (it refuses well-known ones)."""

    ready_path = "/health/liveliness"
    startup_timeout = STARTUP_TIMEOUT

    def __init__(self, executable: Path, workdir: Path, log_dir: Path, settings: dict) -> None:
        """The config (it holds the backend's key) goes to `workdir`, never beside the reports."""
        port = free_port()
        self.master_key = "sk-" + secrets.token_hex(16)
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "litellm-config.yaml"
        config_path.write_text(yaml.safe_dump(settings, sort_keys=False))
        env = {**os.environ, "LITELLM_MASTER_KEY": self.master_key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        argv = [str(executable), "--config", str(config_path), "--host", LOOPBACK, "--port", str(port)]
        super().__init__("litellm", argv, log_dir / "litellm.log", port, env=env, cwd=workdir)
