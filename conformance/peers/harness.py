"""Run the whole suite against real peers and publish what they do: one report per route under
reports/peers/<route>/ (with the route's baseline, which gates the job on "nothing got worse"),
the servers' logs beside them, and the matrix of every route under reports/peers/. Peer-specific
set-up lives in its own module (litellm.py, vllm.py, portkey.py, ccr.py); everything else — serving the backends,
running, gating, writing — is shared here."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from conformance.baseline import Baseline, Gate, gate, load_baseline, write_baseline
from conformance.cases import Case, load_cases, select, tiers_up_to
from conformance.consumers import load_profiles
from conformance.model import RunReport
from conformance.peers import ccr, litellm, portkey, vllm
from conformance.peers.openai_backend import create_openai_app
from conformance.peers.process import ensure_venv, npm_install
from conformance.reference import ReferenceServer, create_app
from conformance.report import load_report, write_reports
from conformance.report.matrix import build_matrix, write_matrix
from conformance.runner import ResultCallback, run_suite
from conformance.target import Target
from conformance.transport import Limits

DEFAULT_OUT = Path("reports/peers")
DEFAULT_WORKDIR = Path(".peers")
# What the scripted OpenAI backend behind a translating route can do: no thinking, images or stream faults.
SCRIPTED_BACKEND_CAPABILITIES = frozenset({"instruction-following", "tools", "count_tokens"})
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
    # The software under test and its version, recorded beside the report ("" for the reference).
    peer: str = ""
    # Headers sent with every request that choose the route through the peer (not credentials).
    headers: dict[str, str] = field(default_factory=dict)


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


def run_route(
    route: Route, cases: list[Case], out: Path, concurrency: int = 4, on_result: ResultCallback | None = None
) -> RunReport:
    """Run the cases against one route and write its reports to out/<route name>/."""
    target = Target(
        base_url=route.base_url,
        api_key=route.api_key,
        model=route.model,
        provider=route.provider,
        reference=route.reference,
        capabilities=route.capabilities,
        extra_headers=dict(route.headers),
        public_headers=frozenset(route.headers),
    )
    report = asyncio.run(run_suite(target, cases, PEER_LIMITS, concurrency, on_result))
    write_reports(report, out / route.name)
    about = {"route": route.name, "peer": route.peer or "conformance reference server", "made_at": report.started_at}
    (out / route.name / PEER_FILE).write_text(json.dumps(about, indent=2) + "\n")
    return report


def litellm_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install and start LiteLLM's proxy in front of the backends; its log goes to out/."""
    python = ensure_venv(workdir / "litellm-venv", litellm.REQUIREMENT, out / "litellm-install.log")
    served = stack.enter_context(backends())
    settings = litellm.config(served.reference_url, served.reference_key, served.openai_url)
    proxy = stack.enter_context(litellm.LiteLLMProxy(python.parent / "litellm", workdir, out, settings))
    return [
        Route("reference", served.reference_url, served.reference_key, "claude-haiku-4-5", reference=True),
        Route(
            "litellm-passthrough",
            proxy.base_url,
            proxy.master_key,
            litellm.PASS_THROUGH_MODEL,
            "litellm",
            peer=f"LiteLLM {litellm.VERSION}",
        ),
        Route(
            "litellm-translation",
            proxy.base_url,
            proxy.master_key,
            litellm.TRANSLATION_MODEL,
            "litellm",
            capabilities=SCRIPTED_BACKEND_CAPABILITIES,
            peer=f"LiteLLM {litellm.VERSION}",
        ),
    ]


def vllm_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install vLLM (CPU), build the tiny model, start the server; its log goes to out/."""
    python = ensure_venv(workdir / "vllm-venv", vllm.REQUIREMENT, out / "vllm-install.log", remove=vllm.MISMATCHED)
    model = vllm.build_model(python, workdir / "tiny-model", out / "vllm-install.log")
    server = stack.enter_context(vllm.VLLMServer(python, model, out))
    claimed = frozenset({"count_tokens", "tools"})
    peer = f"vLLM {vllm.VERSION} (CPU)"
    return [Route("vllm", server.base_url, server.api_key, vllm.MODEL_NAME, "vllm", capabilities=claimed, peer=peer)]


def portkey_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install and start Portkey's gateway (held on loopback) in front of the reference server."""
    log = out / "portkey-install.log"
    package = npm_install(workdir / "portkey", portkey.PACKAGE, portkey.VERSION, log, run_scripts=False)
    served = stack.enter_context(backends())
    gateway = stack.enter_context(portkey.PortkeyGateway(package, portkey.write_preload(workdir / "portkey"), out))
    headers = portkey.route_headers(served.reference_url)
    peer = f"Portkey gateway {portkey.VERSION}"
    model = "claude-haiku-4-5"
    return [Route("portkey", gateway.base_url, served.reference_key, model, "portkey", peer=peer, headers=headers)]


def ccr_routes(out: Path, workdir: Path, stack: ExitStack) -> list[Route]:
    """Install and start claude-code-router in front of the scripted OpenAI backend."""
    package = npm_install(workdir / "ccr", ccr.PACKAGE, ccr.VERSION, out / "ccr-install.log", run_scripts=False)
    served = stack.enter_context(backends())
    router = stack.enter_context(ccr.ClaudeCodeRouter(package, workdir / "ccr-home", out, served.openai_url))
    return [
        Route(
            "ccr",
            router.base_url,
            router.api_key,
            "claude-haiku-4-5",
            "claude-code-router",
            capabilities=SCRIPTED_BACKEND_CAPABILITIES,
            peer=f"claude-code-router {ccr.VERSION}",
        )
    ]


PEERS = {"litellm": litellm_routes, "vllm": vllm_routes, "portkey": portkey_routes, "ccr": ccr_routes}
BASELINE = "baseline.yaml"
PEER_FILE = "peer.json"
MATRIX_ORDER = ("reference", "litellm-passthrough", "litellm-translation", "vllm", "portkey", "ccr")


@dataclass(frozen=True)
class RouteResult:
    """A route's run and the gate's verdict on it against the route's baseline."""

    route: str
    report: RunReport
    gate: Gate
    baseline: Path


def gate_route(name: str, report: RunReport, out: Path, update_baseline: bool = False) -> RouteResult:
    """Judge a route's run against out/<route>/baseline.yaml: written when missing or asked for."""
    path = out / name / BASELINE
    if update_baseline or not path.exists():
        write_baseline(Baseline.from_results(report), path)
    return RouteResult(name, report, gate(report.results, load_baseline(path)), path)


def publish_matrix(out: Path) -> dict[str, Path]:
    """The matrix of every route that has a report under `out` (all peers' runs, not just this one)."""
    names = sorted(
        (path.parent.name for path in out.glob("*/report.json")),
        key=lambda name: (MATRIX_ORDER.index(name) if name in MATRIX_ORDER else len(MATRIX_ORDER), name),
    )
    reports = [(str(out / name / "report.json"), load_report(out / name / "report.json")) for name in names]
    titles = [_title(out / name) for name in names]
    matrix = build_matrix(reports, load_profiles().values(), load_cases(), out_dir=out, titles=titles)
    # Published: name each report relative to the matrix, not by this machine's absolute path.
    matrix.columns = [
        dataclasses.replace(column, source=f"{name}/report.json")
        for column, name in zip(matrix.columns, names, strict=True)
    ]
    return write_matrix(matrix, out)


def _title(route_dir: Path) -> str:
    """A matrix column's title: the route, and the peer's name and version when recorded."""
    try:
        peer = json.loads((route_dir / PEER_FILE).read_text()).get("peer", "")
    except (OSError, ValueError):
        peer = ""
    return f"{route_dir.name} ({peer})" if peer else route_dir.name


def run_peer(
    peer: str,
    out: Path = DEFAULT_OUT,
    workdir: Path = DEFAULT_WORKDIR,
    tier: str = "provider",
    update_baselines: bool = False,
) -> list[RouteResult]:
    """A peers job: start the peer, run every case of the tier on each route, stop everything,
    gate each route on its baseline and rebuild the matrix."""
    cases = select(load_cases(), tiers_up_to(tier))
    # Absolute paths: servers run with their log directory as working directory.
    out, workdir = out.resolve(), workdir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        routes = PEERS[peer](out, workdir, stack)
        reports = [(route.name, run_route(route, cases, out)) for route in routes]
    results = [gate_route(name, report, out, update_baselines) for name, report in reports]
    publish_matrix(out)
    return results
