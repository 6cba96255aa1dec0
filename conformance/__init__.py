"""Conformance test suite and contract checker for Anthropic-Messages-compatible endpoints."""

__version__ = "0.1.0"
