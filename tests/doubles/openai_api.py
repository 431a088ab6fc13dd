"""Test double of an OpenAI-compatible chat-completions API: a real HTTP server on 127.0.0.1 that the
production code reaches with the real ``openai`` client through OPENAI_BASE_URL.

It implements ``POST /v1/chat/completions`` only. It checks the bearer key (401 otherwise), checks
the request has a model and a list of role/content messages (400 otherwise), records every request,
and answers deterministically from the last user message:

- a message with a fenced code block gets that code back in a ``python`` fence, with every
  ``rename OLD to NEW`` in the message applied to it as a whole-word replacement;
- a message without one gets a small Python function whose docstring is the message's first line.

Tests steer failures with attributes: ``fail_status`` (answer that HTTP status with an error body),
``malformed`` (a 200 reply without ``choices``), ``reply_text`` (answer exactly this text).
"""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.doubles.local_server import LocalHTTPServer

FENCE = re.compile(r"```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
RENAME = re.compile(r"rename (\w+) to (\w+)", re.IGNORECASE)


def derived_reply(user_text: str) -> str:
    """The deterministic answer to one user message (see the module docstring)."""
    block = FENCE.search(user_text)
    if block is None:
        first = user_text.strip().splitlines()[0] if user_text.strip() else "generated"
        code = f'def generated() -> str:\n    """{first.replace(chr(34), chr(39))}"""\n    return "double"\n'
    else:
        code = block.group(1)
        for old, new in RENAME.findall(user_text):
            code = re.sub(rf"\b{re.escape(old)}\b", new, code)
    return f"Here is the code.\n\n```python\n{code.rstrip()}\n```\n"


class OpenAIDouble(LocalHTTPServer):
    """Start with ``with OpenAIDouble(api_key) as api:``; ``api.base_url`` is what OPENAI_BASE_URL takes."""

    def __init__(self, api_key: str = "sk-test-double") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        self.malformed = False
        self.reply_text: str | None = None
        super().__init__(self._handler())

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def _answer(self, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _error("Incorrect API key provided.", "invalid_api_key")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body.get("messages"):
            return 400, _error("model and messages are required", "invalid_request")
        messages = body["messages"]
        if not all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in messages):
            return 400, _error("each message needs a role and content", "invalid_request")
        self.requests.append({"headers": headers, "body": body})
        if self.fail_status is not None:
            return self.fail_status, _error("the double was told to fail", "server_error")
        reply = {"id": f"chatcmpl-double-{len(self.requests)}", "object": "chat.completion", "model": body["model"]}
        if self.malformed:
            return 200, reply  # no choices at all
        users = [m["content"] for m in messages if m["role"] == "user"]
        text = self.reply_text if self.reply_text is not None else derived_reply(users[-1] if users else "")
        reply |= {
            "created": int(time.time()),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10},
        }
        return 200, reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, _error(f"no route {self.path}", "not_found"))
                    return
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    self._send(400, _error("body is not JSON", "invalid_request"))
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                self._send(*double._answer(headers, body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                pass

        return Handler


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}
