"""claude-code-router 2.0.0 as a peer under test: the pinned npm package (one self-contained
file), started with Node on loopback under a throwaway HOME whose
`.claude-code-router/config.json` routes every request to the scripted OpenAI backend (Anthropic
-> OpenAI Chat Completions translation, the way its users run it in front of OpenAI-style providers).

3.x cannot be used here: it needs Node 22 and native modules, and one of its dependencies is not
in the registry.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from conformance.peers.process import LOOPBACK, LoopbackServer, free_port, node_executable

VERSION = "2.0.0"
PACKAGE = "@musistudio/claude-code-router"
PROVIDER = "scripted"
MODEL = "scripted"
STARTUP_TIMEOUT = 60.0


def config(port: int, api_key: str, openai_url: str) -> dict:
    """The router's config: loopback, a key, one provider (the scripted backend) as the default route.
    Its own log files stay off; what it prints goes to the harness's log."""
    return {
        "HOST": LOOPBACK,
        "PORT": port,
        "APIKEY": api_key,
        "LOG": False,
        "NON_INTERACTIVE_MODE": True,
        "Providers": [
            {
                "name": PROVIDER,
                "api_base_url": openai_url + "/v1/chat/completions",
                "api_key": "unused",
                "models": [MODEL],
            }
        ],
        "Router": {"default": f"{PROVIDER},{MODEL}"},
    }


class ClaudeCodeRouter(LoopbackServer):
    """`cli.js start` with HOME set to `home` (which then holds the config and the router's own files)."""

    startup_timeout = STARTUP_TIMEOUT

    def __init__(self, package_dir: Path, home: Path, log_dir: Path, openai_url: str) -> None:
        """The config (it holds the router's key) goes to `home`, never beside the reports."""
        port = free_port()
        self.api_key = "ccr-" + secrets.token_hex(16)
        settings = home / ".claude-code-router"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "config.json").write_text(json.dumps(config(port, self.api_key, openai_url), indent=2))
        argv = [node_executable(), str(package_dir / "dist" / "cli.js"), "start"]
        env = {**os.environ, "HOME": str(home)}
        super().__init__("claude-code-router", argv, log_dir / "ccr.log", port, env=env, cwd=home)
