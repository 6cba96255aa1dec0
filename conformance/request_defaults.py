"""How a target is called unless told otherwise: constants only, so that the command line can name them
without importing the target and provider-profile machinery (and PyYAML with it)."""

# The provider whose contract is the API itself (the default profile).
CANONICAL = "anthropic"
# Auth styles a target can use; "none" sends no credentials (servers that take none).
AUTH_STYLES = ("x-api-key", "bearer", "none")
DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_VERSION = "2023-06-01"
