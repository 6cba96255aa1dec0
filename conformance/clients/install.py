"""Installing the clients into the cache folder (.clients/), one folder per client and version, each
installed once: npm packages into a local prefix, the Python SDK into its own virtualenv (the
project's own `anthropic` test dependency is left alone)."""

from __future__ import annotations

from pathlib import Path

from conformance.clients.versions import CLAUDE_CODE, PYTHON_SDK, TYPESCRIPT_SDK, Client
from conformance.peers.process import PeerError, ensure_venv, node_executable, npm_install, run_logged

# Claude Code's package ships bin/claude.exe as a stub of a few hundred bytes; its postinstall
# copies the native binary (from the platform package) over it.
STUB_MAX_BYTES = 64 * 1024


def install_claude_code(workdir: Path, version: str, log_path: Path) -> Path:
    """The native `claude` binary of Claude Code `version`."""
    package_dir = npm_install(workdir / f"{CLAUDE_CODE.name}-{version}", CLAUDE_CODE.package, version, log_path)
    binary = package_dir / "bin" / "claude.exe"
    if _is_stub(binary):  # npm skipped the postinstall (ignore-scripts): run it ourselves
        argv = [node_executable(), "install.cjs"]
        run_logged(argv, log_path, "install Claude Code's native binary (install.cjs)", cwd=package_dir)
    if _is_stub(binary):
        raise PeerError(f"Claude Code {version} has no native binary for this platform in {binary.parent}")
    return binary


def _is_stub(binary: Path) -> bool:
    try:
        return binary.stat().st_size < STUB_MAX_BYTES
    except OSError:
        return True


def install_typescript_sdk(workdir: Path, version: str, log_path: Path) -> Path:
    """The npm prefix (a folder with node_modules/) holding the TypeScript SDK `version`."""
    prefix = workdir / f"{TYPESCRIPT_SDK.name}-{version}"
    npm_install(prefix, TYPESCRIPT_SDK.package, version, log_path)
    return prefix


def install_python_sdk(workdir: Path, version: str, log_path: Path) -> Path:
    """The python of a virtualenv holding the Python SDK `version`."""
    return ensure_venv(workdir / f"{PYTHON_SDK.name}-{version}", f"{PYTHON_SDK.package}=={version}", log_path)


def client_command(
    client: Client, version: str, workdir: Path, log_path: Path, scripts: dict[str, Path]
) -> tuple[str, ...]:
    """Install `client` at `version` into `workdir` (once); the command that runs it. Claude Code runs
    as itself; each SDK runs the script `scripts[client.name]` (node for TypeScript, the SDK's own
    virtualenv for Python), which is given the SDK's install prefix where it needs one."""
    if client is CLAUDE_CODE:
        return (str(install_claude_code(workdir, version, log_path)),)
    if client is TYPESCRIPT_SDK:
        prefix = install_typescript_sdk(workdir, version, log_path)
        return (node_executable(), str(scripts[client.name]), str(prefix))
    if client is PYTHON_SDK:
        return (str(install_python_sdk(workdir, version, log_path)), str(scripts[client.name]))
    raise ValueError(f"unknown client {client.name!r}")
