"""Counting code, comment and blank lines per language over a tree. Which file is which language and
how its comments look comes from the knowledge file ``language-extensions.yaml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from agents.code.sources import is_binary, walk_files
from agents.runtime.errors import ToolError

LANGUAGES_FILE = "language-extensions.yaml"
MAX_COUNTED_BYTES = 20_000_000  # larger files are data dumps or bundles; they would only skew the counts


class Language(BaseModel):
    extensions: list[str] = Field(default_factory=list)
    filenames: list[str] = Field(default_factory=list)
    line_comments: list[str] = Field(default_factory=list)
    block_comments: list[tuple[str, str]] = Field(default_factory=list)


class LanguageTable(BaseModel):
    languages: dict[str, Language]

    def language_of(self, path: Path) -> str | None:
        """The language ``path`` is written in, by exact file name first, then by the longest ending."""
        for name, lang in self.languages.items():
            if path.name in lang.filenames:
                return name
        lowered = path.name.lower()
        best: tuple[int, str] | None = None
        for name, lang in self.languages.items():
            for ext in lang.extensions:
                if lowered.endswith(ext) and (best is None or len(ext) > best[0]):
                    best = (len(ext), name)
        return best[1] if best else None


class LanguageLines(BaseModel):
    language: str
    files: int = 0
    code: int = 0
    comment: int = 0
    blank: int = 0

    @property
    def total(self) -> int:
        return self.code + self.comment + self.blank


class LineCounts(BaseModel):
    path: str
    languages: list[LanguageLines] = Field(description="one entry per language found, most code first")
    total_files: int
    total_code: int
    total_comment: int
    total_blank: int
    other_files: int = Field(description="text files of no known language (counted, not read)")
    binary_files_skipped: int
    large_files_skipped: list[str] = Field(default_factory=list)
    summary: str


def load_languages(raw: object) -> LanguageTable:
    """Validate the parsed knowledge file into a lookup table."""
    if raw is None:
        raise ToolError(f"knowledge file {LANGUAGES_FILE} is missing from this agent")
    try:
        return LanguageTable.model_validate(raw)
    except ValidationError as err:
        raise ToolError(f"knowledge file {LANGUAGES_FILE} is invalid: {err}") from err


def classify_lines(text: str, lang: Language) -> tuple[int, int, int]:
    """(code, comment, blank) for one file's text. A line holding code and a comment counts as code."""
    code = comment = blank = 0
    closing: str | None = None  # the close marker of the block comment we are inside, if any
    for raw in text.splitlines():
        line = raw.strip()
        if closing is not None:
            comment += 1
            if closing in line:
                closing = None
            continue
        if not line:
            blank += 1
            continue
        if any(line.startswith(marker) for marker in lang.line_comments):
            comment += 1
            continue
        opener = next(((o, c) for o, c in lang.block_comments if line.startswith(o)), None)
        if opener is not None:
            comment += 1
            if opener[1] not in line[len(opener[0]) :]:
                closing = opener[1]
            continue
        code += 1
        # a block comment opened after code on this line and left open swallows the following lines
        for open_marker, close_marker in lang.block_comments:
            at = line.rfind(open_marker)
            if at > 0 and close_marker not in line[at + len(open_marker) :]:
                closing = close_marker
    return code, comment, blank


def count_tree(target: Path, shown: str, table: LanguageTable) -> LineCounts:
    """Line counts for the file or tree at ``target`` (``shown`` is how the caller named it)."""
    files = [target] if target.is_file() else list(walk_files(target))
    per_language: dict[str, LanguageLines] = {}
    other = binary = 0
    large: list[str] = []
    base = target.parent if target.is_file() else target
    for file in files:
        if is_binary(file):
            binary += 1
            continue
        name = table.language_of(file)
        if name is None:
            other += 1
            continue
        if file.stat().st_size > MAX_COUNTED_BYTES:
            large.append(file.relative_to(base).as_posix())
            continue
        code, comment, blank = classify_lines(file.read_text(encoding="utf-8", errors="replace"), table.languages[name])
        entry = per_language.setdefault(name, LanguageLines(language=name))
        entry.files += 1
        entry.code += code
        entry.comment += comment
        entry.blank += blank
    languages = sorted(per_language.values(), key=lambda e: (-e.code, e.language))
    totals = [sum(getattr(e, k) for e in languages) for k in ("files", "code", "comment", "blank")]
    top = ", ".join(f"{e.language} {e.code}" for e in languages[:5]) or "no recognised source"
    return LineCounts(
        path=shown,
        languages=languages,
        total_files=totals[0],
        total_code=totals[1],
        total_comment=totals[2],
        total_blank=totals[3],
        other_files=other,
        binary_files_skipped=binary,
        large_files_skipped=large,
        summary=f"{totals[1]} code lines in {totals[0]} file(s) ({top}); {totals[2]} comment, {totals[3]} blank",
    )
