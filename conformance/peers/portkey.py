"""Portkey's open-source AI gateway as a peer under test: the pinned npm package, started with
Node on loopback, and one route — pass-through to the reference server through its `anthropic`
provider (the `x-portkey-provider` and `x-portkey-custom-host` headers; the client's `x-api-key`
goes upstream).

The gateway has no host option and listens on every interface; a preload (`node -r`) wraps
`net.Server.prototype.listen` so that whatever it asks for, it listens on 127.0.0.1 only.
"""

from __future__ import annotations

from pathlib import Path

from conformance.peers.process import LOOPBACK, LoopbackServer, free_port, node_executable

VERSION = "1.15.2"
PACKAGE = "@portkey-ai/gateway"
STARTUP_TIMEOUT = 60.0
# Every listen() of the process, whatever host it names or omits, on loopback (a socket path stays one).
LOOPBACK_PRELOAD = f"""\
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {{
  const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let options = args[0];
  if (options !== null && typeof options === 'object') {{
    if (options.path !== undefined) return listen.call(this, options, callback);
  }} else if (typeof options === 'string' && !/^\\d+$/.test(options)) {{
    return listen.call(this, options, callback);
  }} else {{
    options = {{ port: Number(options || 0) }};
  }}
  return listen.call(this, {{ ...options, host: '{LOOPBACK}' }}, callback);
}};
"""


def write_preload(folder: Path) -> Path:
    """The loopback preload, written beside the installed gateway."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "loopback.cjs"
    path.write_text(LOOPBACK_PRELOAD)
    return path


def route_headers(reference_url: str) -> dict[str, str]:
    """The headers that route a request through the gateway's anthropic provider to the reference server."""
    return {"x-portkey-provider": "anthropic", "x-portkey-custom-host": reference_url + "/v1"}


class PortkeyGateway(LoopbackServer):
    """`start-server.js --headless` on a free port, held on loopback by the preload."""

    startup_timeout = STARTUP_TIMEOUT

    def __init__(self, package_dir: Path, preload: Path, log_dir: Path) -> None:
        port = free_port()
        start = package_dir / "build" / "start-server.js"
        argv = [node_executable(), "-r", str(preload), str(start), f"--port={port}", "--headless"]
        super().__init__("portkey", argv, log_dir / "portkey.log", port, cwd=log_dir)
