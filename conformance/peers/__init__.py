"""Real peers under test: the harness that installs, starts and runs the suite against
implementations nobody on this project wrote (LiteLLM's proxy, vLLM), on loopback only."""
