"""The code agent's one door to a language model: an OpenAI-compatible chat-completions API reached with
the ``openai`` client. Settings come from the environment when a tool runs; every failure (no key,
rejected key, server error, a reply without a usable message) becomes a ToolError that says which."""

from __future__ import annotations

import re
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.runtime.errors import NotConfigured, ToolError
from reynolds.config import read_secret_files

NOT_CONFIGURED = "LLM not configured: set OPENAI_API_KEY_FILE (or OPENAI_API_KEY)"
FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)


class LLMSettings(BaseSettings):
    """``OPENAI_API_KEY_FILE`` / ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` (any compatible server),
    ``OPENAI_MODEL``, ``OPENAI_TIMEOUT_S``, ``OPENAI_MAX_RETRIES``."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    openai_api_key: str = ""
    openai_base_url: str = Field("", description="empty: the provider's default (api.openai.com)")
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = Field(120.0, gt=0)
    openai_max_retries: int = Field(2, ge=0, le=10)
    openai_max_tokens: int = Field(4096, ge=16)

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, values: dict) -> dict:
        return read_secret_files(values, ["openai_api_key"], optional=["openai_api_key"])


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None


def load_settings() -> LLMSettings:
    """The LLM settings now, or NotConfigured when no key is available."""
    try:
        settings = LLMSettings()
    except OSError as err:
        raise NotConfigured(f"LLM not configured: cannot read OPENAI_API_KEY_FILE ({err})") from err
    except ValidationError as err:
        raise ToolError(f"LLM settings are invalid: {err}") from err
    if not settings.openai_api_key:
        raise NotConfigured(NOT_CONFIGURED)
    return settings


def is_configured() -> bool:
    """True when a key is set; tools that can work without the model use this to decide."""
    try:
        load_settings()
    except ToolError:
        return False
    return True


async def complete(system: str, user: str, temperature: float = 0.2) -> Completion:
    """One chat completion: ``system`` and ``user`` messages in, the assistant's text out."""
    settings = load_settings()
    where = settings.openai_base_url or "the default OpenAI endpoint"
    client = AsyncOpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url or None,
        timeout=settings.openai_timeout_s,
        max_retries=settings.openai_max_retries,
    )
    try:
        response = await client.chat.completions.create(
            model=settings.openai_model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=temperature,
            max_tokens=settings.openai_max_tokens,
        )
    except openai.AuthenticationError as err:
        raise ToolError(f"LLM at {where} rejected the API key (HTTP 401): {_reason(err)}") from err
    except openai.APIStatusError as err:
        raise ToolError(f"LLM at {where} answered HTTP {err.status_code}: {_reason(err)}") from err
    except openai.APITimeoutError as err:
        raise ToolError(f"LLM at {where} did not answer within {settings.openai_timeout_s:g} s") from err
    except openai.APIConnectionError as err:
        raise ToolError(f"cannot reach the LLM at {where}: {err}") from err
    except openai.APIResponseValidationError as err:
        raise ToolError(f"LLM at {where} returned a malformed completion: {err}") from err
    finally:
        await client.close()
    return _completion(response, where)


def _reason(err: openai.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:500]
    return str(err.message)[:500]


def _completion(response: object, where: str) -> Completion:
    # the client does not validate replies strictly, so a server that leaves fields out shows up here
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ToolError(f"LLM at {where} returned a malformed completion: no choices")
    message = getattr(choices[0], "message", None)
    text = getattr(message, "content", None)
    if not isinstance(text, str) or not text.strip():
        raise ToolError(f"LLM at {where} returned a malformed completion: the first choice has no text content")
    usage = getattr(response, "usage", None)
    return Completion(
        text=text,
        model=str(getattr(response, "model", None) or ""),
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )


def extract_code(text: str, language: str) -> tuple[str, bool]:
    """The code in a reply: the first fenced block tagged ``language`` (else the first fenced block),
    or the whole reply when it has no fence. The flag says whether a fence was found."""
    blocks = FENCE.findall(text)
    if not blocks:
        return text.strip() + "\n", False
    wanted = language.lower()
    tagged = [body for tag, body in blocks if tag.lower() in (wanted, {"python": "py"}.get(wanted, wanted))]
    body = (tagged or [blocks[0][1]])[0]
    return body.rstrip() + "\n", True
