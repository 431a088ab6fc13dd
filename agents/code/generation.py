"""Writing and rewriting code with the LLM: the prompts (the team's standards go into every one), the
code taken out of the reply, a syntax check for Python, and a unified diff for a refactoring."""

from __future__ import annotations

import ast
import difflib

from pydantic import BaseModel, Field

from agents.code import llm
from agents.code.standards import PythonStandards

MAX_PROMPT_SOURCE_CHARS = 120_000  # keeps one request well inside a typical context window


class GeneratedCode(BaseModel):
    language: str
    code: str
    model: str
    had_code_block: bool = Field(description="the model answered with a fenced block (else its whole reply)")
    syntax_ok: bool | None = Field(description="Python only: the code parses; null for other languages")
    syntax_error: str | None = None
    written_to: str | None = None
    summary: str


class Refactoring(BaseModel):
    path: str
    instruction: str
    model: str
    new_content: str
    diff: str = Field(description="unified diff from the current file to new_content")
    changed: bool
    lines_added: int
    lines_removed: int
    syntax_ok: bool | None
    syntax_error: str | None = None
    applied: bool = Field(description="the file in the workspace was rewritten (apply=true)")
    summary: str


def system_prompt(standards: PythonStandards, task: str) -> str:
    """The instructions every code request carries: role, the team's standards, the answer format."""
    docstrings = ", ".join(standards.required_docstrings) or "none required"
    return (
        f"You are a senior engineer {task}. Team standards for Python: lines at most "
        f"{standards.line_length} characters, target {standards.target_version}, cyclomatic complexity at "
        f"most {standards.max_complexity} per function, docstrings required for: {docstrings}; type hints "
        "everywhere. Answer with exactly one fenced code block holding the complete file, then nothing else."
    )


def python_syntax(code: str, language: str) -> tuple[bool | None, str | None]:
    """(parses, error) for Python; (None, None) for languages we cannot check here."""
    if language.lower() not in ("python", "py"):
        return None, None
    try:
        ast.parse(code)
    except SyntaxError as err:
        return False, f"line {err.lineno}: {err.msg}"
    return True, None


def fenced(label: str, text: str, language: str) -> str:
    return f"{label}\n```{language}\n{text.rstrip()}\n```\n"


async def generate(
    instruction: str, language: str, context: list[tuple[str, str]], standards: PythonStandards
) -> GeneratedCode:
    """New code for ``instruction``; ``context`` is (path, text) of files the model should build on."""
    parts = [f"Write {language} code for this request:\n{instruction}\n"]
    parts += [fenced(f"Existing file {path} (for context):", text, language) for path, text in context]
    reply = await llm.complete(system_prompt(standards, f"writing {language} code"), "\n".join(parts))
    code, had_block = llm.extract_code(reply.text, language)
    ok, error = python_syntax(code, language)
    summary = f"{len(code.splitlines())} line(s) of {language} from {reply.model or 'the model'}"
    if ok is False:
        summary += f"; it does not parse ({error})"
    return GeneratedCode(
        language=language,
        code=code,
        model=reply.model,
        had_code_block=had_block,
        syntax_ok=ok,
        syntax_error=error,
        summary=summary,
    )


def language_of(path: str) -> str:
    """A fence tag for the file's language; plain 'text' when unknown."""
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    known = {"py": "python", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust", "java": "java"}
    return known.get(suffix, suffix or "text")


async def refactor(path: str, current: str, instruction: str, standards: PythonStandards) -> Refactoring:
    """A proposed rewrite of the file ``path`` (text ``current``) following ``instruction``."""
    language = language_of(path)
    user = (
        f"Refactor the file below. Instruction: {instruction}\n"
        "Keep its behaviour unless the instruction says otherwise, and return the whole new file.\n\n"
        + fenced(f"File {path}:", current, language)
    )
    reply = await llm.complete(system_prompt(standards, "refactoring existing code"), user)
    new_content, _ = llm.extract_code(reply.text, language)
    diff_lines = list(
        difflib.unified_diff(
            current.splitlines(keepends=True), new_content.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )
    added = sum(1 for d in diff_lines if d.startswith("+") and not d.startswith("+++"))
    removed = sum(1 for d in diff_lines if d.startswith("-") and not d.startswith("---"))
    ok, error = python_syntax(new_content, language)
    changed = new_content != current
    summary = f"{path}: +{added} -{removed} line(s) proposed" if changed else f"{path}: the model proposed no change"
    if ok is False:
        summary += f"; the proposal does not parse ({error})"
    return Refactoring(
        path=path,
        instruction=instruction,
        model=reply.model,
        new_content=new_content,
        diff="".join(diff_lines),
        changed=changed,
        lines_added=added,
        lines_removed=removed,
        syntax_ok=ok,
        syntax_error=error,
        applied=False,
        summary=summary,
    )
