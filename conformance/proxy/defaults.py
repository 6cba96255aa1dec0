"""The proxy's defaults, apart from the modules that use them so that `conformance --help` imports no server."""

# How long the proxy waits between two bytes of the upstream: as long as Claude Code itself waits.
PROXY_MAX_SILENCE = 600.0
# The longest a client may take to send a request's headers, from connecting (or the end of the
# previous answer on a kept-alive connection) to the blank line that ends them.
DEFAULT_HEADER_TIMEOUT = 30.0
DEFAULT_MAX_EXCHANGES = 2000
RESULTS_FILE = "results.jsonl"
# Every judged exchange, whole, while the proxy runs (removed once the reports are written on stop).
SPOOL_FILE = ".judged.spool"
