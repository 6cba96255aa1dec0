"""Real clients through the proxy into the reference server: the current Claude Code and the
official TypeScript and Python SDKs, installed pinned into .clients/ and driven on loopback, so
that a change in what a client sends shows up as a refused request or a failed check
(`python -m conformance.clients`, docs/background/clients.md)."""
