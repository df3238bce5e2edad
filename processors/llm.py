"""A client for any OpenAI-compatible chat endpoint (llama.cpp's server, vLLM, Ollama, OpenAI itself).

Only `POST {base_url}/chat/completions` is used, at temperature 0 so that a redelivered job asks the same question
and gets the same answer. Every failure (refused connection, timeout, an error status, a body without a message)
is an `LlmUnavailable` with a reason a job can record: a job never fails because the model is down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class LlmUnavailable(Exception):
    """The endpoint did not answer usefully; the message says how, for the job's record."""


@dataclass(frozen=True)
class ChatClient:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0

    async def complete(self, system: str, user: str, *, max_tokens: int = 1024) -> str:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": False,
        }
        url = self.base_url.rstrip("/") + "/chat/completions"
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(url, json=body, headers=headers)
        except httpx.TimeoutException as e:
            raise LlmUnavailable(f"the language model did not answer within {self.timeout_s:g} s") from e
        except httpx.HTTPError as e:
            raise LlmUnavailable(f"the language model could not be reached ({type(e).__name__})") from e
        if response.status_code != 200:
            raise LlmUnavailable(f"the language model answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LlmUnavailable("the language model's answer has no message") from e
        if not isinstance(content, str):
            raise LlmUnavailable("the language model's answer has no text")
        return content
