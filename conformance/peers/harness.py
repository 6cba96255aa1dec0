"""Run the whole suite against real peers and publish what they do: one report per route under
reports/peers/<route>/, the servers' logs beside it. Peer-specific set-up lives in its own module
(litellm.py ...); everything else — serving the backends, running, writing — is shared here."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from conformance.cases import Case, load_cases, select, tiers_up_to
from conformance.model import RunReport
from conformance.peers import litellm, vllm
from conformance.peers.openai_backend import create_openai_app
from conformance.peers.process import ensure_venv
from conformance.reference import ReferenceServer, create_app
from conformance.report import write_reports
from conformance.runner import run_suite
from conformance.target import Target
from conformance.transport import Limits

DEFAULT_OUT = Path("reports/peers")
DEFAULT_WORKDIR = Path(".peers")
# Peers answer in well under a second here; a route that hangs should cost seconds, not minutes.
PEER_LIMITS = Limits(timeout=30.0, max_silence=15.0)


@dataclass(frozen=True)
class Route:
    """One way through a peer: where to call it, with which model and provider profile."""

    name: str
    base_url: str
    api_key: str
    model: str
    provider: str = "anthropic"
    reference: bool = False
    # Capabilities the route claims (None: all); a random-weights model claims no instruction-following.
    capabilities: frozenset[str] | None = None


@dataclass(frozen=True)
class Backends:
    """The servers peers are routed to: the reference server and the scripted OpenAI backend."""

    reference_url: str
    reference_key: str
    openai_url: str


@contextmanager
def backends() -> Iterator[Backends]:
    key = "ref-" + secrets.token_hex(16)
    with ReferenceServer(app=create_app(key)) as reference, ReferenceServer(app=create_openai_app()) as openai:
        yield Backends(reference.base_url, key, openai.base_url)


def run_route(route: Route, cases: list[Case], out: Path, concurrency: int = 4) -> RunReport:
    """Run the cases against one route and write its reports to out/<route name>/."""
    target = Target(
        base_url=route.base_url,
        api_key=route.api_key,
        model=route.model,
        provider=route.provider,
        reference=route.reference,
        capabilities=route.capabilities,
    )
    report = asyncio.run(run_suite(target, cases, PEER_LIMITS, concurrency))
    write_reports(report, out / route.name)
    return report


def litellm_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install and start LiteLLM's proxy in front of the backends; its log goes to out/."""
    python = ensure_venv(workdir / "litellm-venv", litellm.REQUIREMENT, out / "litellm-install.log")
    served = stack.enter_context(backends())
    settings = litellm.config(served.reference_url, served.reference_key, served.openai_url)
    proxy = stack.enter_context(litellm.LiteLLMProxy(python.parent / "litellm", out, settings))
    return [
        Route("reference", served.reference_url, served.reference_key, "claude-haiku-4-5", reference=True),
        Route("litellm-passthrough", proxy.base_url, proxy.master_key, litellm.PASS_THROUGH_MODEL, "litellm"),
        Route(
            "litellm-translation",
            proxy.base_url,
            proxy.master_key,
            litellm.TRANSLATION_MODEL,
            "litellm",
            # What the scripted OpenAI backend can do: it has no thinking, images or stream faults.
            capabilities=frozenset({"instruction-following", "tools", "count_tokens"}),
        ),
    ]


def vllm_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install vLLM (CPU), build the tiny model, start the server; its log goes to out/."""
    python = ensure_venv(workdir / "vllm-venv", vllm.REQUIREMENT, out / "vllm-install.log", remove=vllm.MISMATCHED)
    model = vllm.build_model(python, workdir / "tiny-model", out / "vllm-install.log")
    server = stack.enter_context(vllm.VLLMServer(python, model, out))
    claimed = frozenset({"count_tokens", "tools"})
    return [Route("vllm", server.base_url, "unused-key", vllm.MODEL_NAME, "vllm", capabilities=claimed)]


PEERS = {"litellm": litellm_routes, "vllm": vllm_routes}


def run_peer(
    peer: str, out: Path = DEFAULT_OUT, workdir: Path = DEFAULT_WORKDIR, tier: str = "extended"
) -> list[RunReport]:
    """A peers job: start the peer, run every case of the tier on each route, stop everything."""
    cases = select(load_cases(), tiers_up_to(tier))
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        routes = PEERS[peer](out, workdir, stack)
        return [run_route(route, cases, out) for route in routes]
