"""Client impact: which real client breaks on each difference a report found. Every non-passing
case's recorded answers are replayed from a loopback server to the official Python and TypeScript
SDKs and to Claude Code (pinned), and each result gets, per client, `breaks`, `degrades`,
`unaffected` or `unknown` with the client's own message (docs/how-to/impact.md)."""
