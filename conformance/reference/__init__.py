"""The embedded reference server: a faithful emulation of the Anthropic Messages API.

POST /v1/messages (JSON or SSE) and POST /v1/messages/count_tokens, answered by a deterministic
scripted model. `conformance run` uses it when no --base-url is given; docs/reference/reference-server.md
describes the prompt patterns it follows.
"""

from conformance.reference.app import create_app
from conformance.reference.server import ReferenceServer

__all__ = ["ReferenceServer", "create_app"]
