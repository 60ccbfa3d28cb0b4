"""Ask an OpenAI-compatible chat completions endpoint: OpenAI, Azure OpenAI, or any base URL.

Plain HTTP from the standard library: timeouts, retries with backoff on 429 and 5xx (honouring
``Retry-After``), and errors that say what happened and what to check.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from llmstep.diagnose import settings
from llmstep.errors import DiagnosisError

RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Model:
    """Where and how to ask. ``provider`` is openai, azure or compatible."""

    api_key: str
    provider: str = settings.PROVIDER
    model: str = settings.MODEL
    base_url: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str = settings.API_VERSION
    timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0

    def request(self) -> tuple[str, dict[str, str]]:
        """The URL and auth header of a chat completion."""
        if self.provider == "azure":
            if not (self.azure_endpoint and self.azure_deployment):
                raise DiagnosisError("Azure OpenAI needs --azure-endpoint and --azure-deployment")
            url = (
                f"{self.azure_endpoint.rstrip('/')}/openai/deployments/{self.azure_deployment}/chat/completions"
                f"?api-version={self.api_version}"
            )
            return url, {"api-key": self.api_key}
        if self.provider not in ("openai", "compatible"):
            raise DiagnosisError(f"provider {self.provider!r} is not openai, azure or compatible")
        base = (self.base_url or settings.OPENAI_URL).rstrip("/")
        return f"{base}/chat/completions", {"Authorization": f"Bearer {self.api_key}"}


def chat(model: Model, messages: list[dict[str, str]]) -> str:
    """The model's answer text; DiagnosisError when it cannot be had."""
    url, auth = model.request()
    body: dict[str, Any] = {"messages": messages, "temperature": 0, "response_format": {"type": "json_object"}}
    if model.provider != "azure":
        body["model"] = model.model
    data = json.dumps(body).encode()
    last = ""
    for attempt in range(model.retries + 1):
        req = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": "llmstep", **auth}
        )
        try:
            with urllib.request.urlopen(req, timeout=model.timeout) as resp:  # the configured endpoint
                payload = json.loads(resp.read())
            return _content(payload)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            last = f"HTTP {exc.code}: {detail}"
            if exc.code not in RETRY_STATUSES or attempt == model.retries:
                hint = {
                    401: "check the API key",
                    403: "check the key's permissions",
                    404: "check the model, deployment and base URL",
                }.get(exc.code, "")
                raise DiagnosisError(
                    f"the model endpoint refused the request ({last})" + (f"; {hint}" if hint else "")
                ) from exc
            delay = _retry_after(exc.headers.get("Retry-After")) or model.backoff * 2**attempt
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = str(getattr(exc, "reason", exc))
            if attempt == model.retries:
                raise DiagnosisError(f"cannot reach the model at {url.split('?')[0]}: {last}") from exc
            delay = model.backoff * 2**attempt
        except ValueError as exc:
            raise DiagnosisError(f"the model endpoint answered with something that is not JSON: {exc}") from exc
        time.sleep(delay)
    raise DiagnosisError(f"the model did not answer: {last}")


def _content(payload: dict[str, Any]) -> str:
    try:
        return str(payload["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError) as exc:
        raise DiagnosisError(f"the model's answer has no choices[0].message.content: {str(payload)[:300]}") from exc


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 60.0) if value else None
    except ValueError:
        return None
