"""One probe before a run: is the Messages API where the base URL says it is?

A target that cannot be connected to, or that answers 404 where /v1/messages should be, would fail every
case the same way; the probe says so once, with the likely cause, and the run stops before it starts.
The probe posts an empty JSON object: a conforming endpoint refuses it (400 or 401) and spends nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from conformance.target import ENDPOINTS, Target

V1_SUFFIX = "/v1"


class PreflightError(Exception):
    """The target cannot serve the suite as configured; the message is one sentence with what to do."""


def diagnose(base_url: str, status: int | None, problem: str = "") -> str | None:
    """The one-sentence explanation of a probe's answer (`status` None: no answer, `problem` says why), or None."""
    if status is None:
        return f"cannot reach {base_url}: {problem}; is the target running, and is --base-url right?"
    if status != 404:
        return None
    url = base_url + ENDPOINTS["messages"]
    if urlsplit(base_url).path.rstrip("/").endswith(V1_SUFFIX):
        fixed = base_url.rstrip("/").removesuffix(V1_SUFFIX)
        return f"{url} answered 404: drop /v1 from --base-url (use {fixed}): the suite appends /v1/messages"
    return (
        f"{url} answered 404: --base-url is the URL the suite appends /v1/messages to (as ANTHROPIC_BASE_URL); "
        "check its path (--no-preflight to run anyway)"
    )


def preflight(target: Target, timeout: float) -> None:
    """Probe `target`'s Messages endpoint once; raise PreflightError when no case could succeed there."""
    import httpx

    headers = {**target.default_headers(), **target.auth_headers()}
    try:
        # Only the status is read: the body of a hostile answer may never end.
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("POST", target.url("messages"), headers=headers, content=b"{}") as response,
        ):
            status: int | None = response.status_code
        problem = ""
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        status, problem = None, _describe(exc)
    except httpx.HTTPError:
        # Reachable, but the answer is broken (silence, garbage, a reset): that is for the cases to
        # judge, each with its own finding, not a reason to stop before the run.
        return
    message = diagnose(target.base_url, status, problem)
    if message:
        raise PreflightError(message)


def _describe(exc: Exception) -> str:
    """What went wrong, without the exception's text (it may quote the URL's credentials)."""
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unknown"
    return "no connection in time"
