"""git on repositories in the workspace: every command goes through the sandbox as an argument list built
by agents/runtime/gitsafe.py (no program a repository names ever runs), and its machine-readable output
(porcelain v2, custom log formats) is parsed into models."""

from __future__ import annotations

import re
from fnmatch import fnmatch

from pydantic import BaseModel, Field

from agents.runtime import gitsafe
from agents.runtime.errors import ToolError
from agents.runtime.sandbox import CommandResult, Sandbox

FIELD, RECORD = "\x1f", "\x1e"
STATUS_WORDS = {
    "M": "modified",
    "T": "type-changed",
    "A": "added",
    "D": "deleted",
    "R": "renamed",
    "C": "copied",
    "U": "unmerged",
}
REMOTE_SOURCE = re.compile(r"^(https?|ssh|git)://|^[\w.-]+@[\w.-]+:")


class FileChange(BaseModel):
    path: str
    status: str = Field(description="added | modified | deleted | renamed | copied | type-changed | unmerged")
    orig_path: str | None = Field(None, description="the old path of a rename or copy")


class GitStatus(BaseModel):
    repo: str
    branch: str | None = Field(description="current branch; None when HEAD is detached")
    commit: str | None = Field(description="HEAD commit; None before the first commit")
    upstream: str | None = None
    ahead: int = 0
    behind: int = 0
    clean: bool
    staged: list[FileChange]
    unstaged: list[FileChange]
    untracked: list[str]
    conflicted: list[str]


class Commit(BaseModel):
    sha: str
    short_sha: str
    author: str
    email: str
    date: str = Field(description="author date, ISO 8601")
    parents: list[str]
    subject: str


class GitLog(BaseModel):
    repo: str
    ref: str
    commits: list[Commit]


class DiffFile(BaseModel):
    path: str
    added: int | None = Field(description="lines added; None for binary files")
    deleted: int | None
    binary: bool


class GitDiff(BaseModel):
    repo: str
    compared: str = Field(description="what was compared, e.g. 'working tree vs index' or 'main..feature'")
    files: list[DiffFile]
    added: int
    deleted: int
    patch: str
    patch_truncated: bool


class Branch(BaseModel):
    name: str
    remote: bool
    commit: str
    upstream: str | None = None
    current: bool
    protected: bool = Field(description="matches the team's protected_branches (context/team/processes.json)")
    last_commit_date: str
    subject: str


class GitBranches(BaseModel):
    repo: str
    current: str | None
    branches: list[Branch]


class CloneResult(BaseModel):
    source: str
    dest: str
    branch: str | None
    commit: str | None


def check_ref(value: str, what: str = "ref") -> str:
    """Refuse values git would read as options (``--upload-pack=...``) or that cannot be refs."""
    if not value or value.startswith("-") or any(c in value for c in "\0\n\r "):
        raise ToolError(f"{what} {value!r} is not a valid git revision")
    return value


async def run_git(sandbox: Sandbox, repo: str, *args: str, network: bool = False) -> CommandResult:
    """One hardened git command in ``repo``. The repository's config is listed first (that runs nothing)
    so that every filter, diff and merge driver it defines is switched off by name."""
    env = gitsafe.git_env(allow_file=sandbox.git_allow_file)
    listing = await sandbox.run(gitsafe.git_argv(*gitsafe.CONFIG_LISTING), cwd=repo, env=env)
    drivers = gitsafe.config_drivers(listing.stdout) if listing.exit_code == 0 else []
    try:
        argv = gitsafe.git_argv(*args, drivers=drivers)
    except ValueError as err:
        raise ToolError(f"{repo!r}: {err}") from err
    return await sandbox.run(argv, cwd=repo, env=env, network=network)


async def git(sandbox: Sandbox, repo: str, *args: str, ok_codes: tuple[int, ...] = (0,)) -> CommandResult:
    result = await run_git(sandbox, repo, *args)
    if result.exit_code not in ok_codes:
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit code {result.exit_code}"
        if "not a git repository" in result.stderr:
            raise ToolError(f"{repo!r} is not a git repository")
        raise ToolError(f"git {args[0]} failed in {repo!r}: {message}")
    return result


async def status(sandbox: Sandbox, repo: str) -> GitStatus:
    out = (await git(sandbox, repo, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")).stdout
    s = GitStatus(repo=repo, branch=None, commit=None, clean=True, staged=[], unstaged=[], untracked=[], conflicted=[])
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if entry.startswith("# branch.oid "):
            oid = entry.split()[-1]
            s.commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.split(" ", 2)[2]
            s.branch = None if head == "(detached)" else head
        elif entry.startswith("# branch.upstream "):
            s.upstream = entry.split(" ", 2)[2]
        elif entry.startswith("# branch.ab "):
            ahead, behind = entry.split()[2:4]
            s.ahead, s.behind = int(ahead), abs(int(behind))
        elif entry.startswith(("1 ", "2 ")):
            parts = entry.split(" ", 9 if entry[0] == "2" else 8)
            xy, path = parts[1], parts[-1]
            orig = None
            if entry[0] == "2":
                orig = entries[i]  # with -z the original path of a rename is the next entry
                i += 1
            if xy[0] != ".":
                s.staged.append(FileChange(path=path, status=STATUS_WORDS.get(xy[0], xy[0]), orig_path=orig))
            if xy[1] != ".":
                s.unstaged.append(FileChange(path=path, status=STATUS_WORDS.get(xy[1], xy[1])))
        elif entry.startswith("u "):
            s.conflicted.append(entry.split(" ", 10)[-1])
        elif entry.startswith("? "):
            s.untracked.append(entry[2:])
    s.clean = not (s.staged or s.unstaged or s.untracked or s.conflicted)
    return s


async def log(sandbox: Sandbox, repo: str, ref: str, limit: int, path: str | None) -> GitLog:
    fmt = FIELD.join(["%H", "%h", "%an", "%ae", "%aI", "%P", "%s"]) + RECORD
    args = ["log", f"--max-count={limit}", f"--format={fmt}", check_ref(ref), "--"]
    if path:
        args.append(path)
    result = await run_git(sandbox, repo, *args)
    if result.exit_code != 0:
        unborn = "does not have any commits" in result.stderr or "bad revision 'HEAD'" in result.stderr
        if ref == "HEAD" and unborn:  # a repository before its first commit has no history, not an error
            return GitLog(repo=repo, ref=ref, commits=[])
        await git(sandbox, repo, *args)  # re-run through the error path for a uniform message
    commits = []
    for record in result.stdout.split(RECORD):
        fields = record.strip("\n").split(FIELD)
        if len(fields) == 7:
            sha, short, author, email, date, parents, subject = fields
            commits.append(
                Commit(
                    sha=sha,
                    short_sha=short,
                    author=author,
                    email=email,
                    date=date,
                    parents=parents.split(),
                    subject=subject,
                )
            )
    return GitLog(repo=repo, ref=ref, commits=commits)


async def diff(
    sandbox: Sandbox, repo: str, base: str | None, target: str | None, staged: bool, paths: list[str], max_chars: int
) -> GitDiff:
    revs = [check_ref(r) for r in (base, target) if r]
    if target and not base:
        raise ToolError("give `base` when you give `target`")
    if staged and revs:
        raise ToolError("`staged` compares the index with HEAD; do not combine it with base/target")
    options = ["--cached"] if staged else []
    tail = [*revs, "--", *paths]
    numstat = (await git(sandbox, repo, "diff", "--numstat", "-z", *options, *tail)).stdout
    files: list[DiffFile] = []
    entries = numstat.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if not entry:
            continue
        added, deleted, path = entry.split("\t", 2)
        if path == "":  # rename: "a\td\t\0old\0new"
            path = entries[i + 1]
            i += 2
        binary = added == "-"
        files.append(
            DiffFile(
                path=path, added=None if binary else int(added), deleted=None if binary else int(deleted), binary=binary
            )
        )
    patch = (await git(sandbox, repo, "diff", *options, *tail)).stdout
    if staged:
        compared = "index vs HEAD"
    elif base and target:
        compared = f"{base}..{target}"
    elif base:
        compared = f"working tree vs {base}"
    else:
        compared = "working tree vs index"
    return GitDiff(
        repo=repo,
        compared=compared,
        files=files,
        added=sum(f.added or 0 for f in files),
        deleted=sum(f.deleted or 0 for f in files),
        patch=patch[:max_chars],
        patch_truncated=len(patch) > max_chars,
    )


async def branches(sandbox: Sandbox, repo: str, protected_patterns: list[str]) -> GitBranches:
    fmt = FIELD.join(
        ["%(refname)", "%(objectname)", "%(upstream:short)", "%(HEAD)", "%(committerdate:iso-strict)", "%(subject)"]
    )
    out = (await git(sandbox, repo, "for-each-ref", f"--format={fmt}", "refs/heads", "refs/remotes")).stdout
    found: list[Branch] = []
    for row in out.splitlines():
        refname, sha, upstream, head, date, subject = row.split(FIELD)
        remote = refname.startswith("refs/remotes/")
        name = refname.removeprefix("refs/remotes/" if remote else "refs/heads/")
        if remote and name.endswith("/HEAD"):
            continue
        short = name.split("/", 1)[1] if remote and "/" in name else name
        found.append(
            Branch(
                name=name,
                remote=remote,
                commit=sha,
                upstream=upstream or None,
                current=head == "*",
                protected=any(fnmatch(short, p) for p in protected_patterns),
                last_commit_date=date,
                subject=subject,
            )
        )
    current = next((b.name for b in found if b.current), None)
    return GitBranches(repo=repo, current=current, branches=found)


def is_remote(source: str) -> bool:
    return bool(REMOTE_SOURCE.match(source))


async def clone(sandbox: Sandbox, source: str, dest: str, branch: str | None, depth: int | None) -> CloneResult:
    """Clone ``source`` (a URL, or a path already resolved inside the workspace) into ``dest``."""
    args = ["clone", "--quiet"]
    if branch:
        args += ["--branch", check_ref(branch, "branch")]
    if depth:
        args += [f"--depth={depth}"]
    remote = is_remote(source)
    if not remote and not sandbox.git_allow_file:
        raise ToolError(f"cloning the local path {source!r} needs the file transport: SANDBOX_GIT_ALLOW_FILE=true")
    if not remote:
        args.append(f"--upload-pack={gitsafe.LOCAL_UPLOAD_PACK}")
    result = await run_git(sandbox, ".", *args, "--", source, dest, network=remote)
    if result.exit_code != 0:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        raise ToolError(f"git clone of {source!r} failed: {lines[-1] if lines else f'exit code {result.exit_code}'}")
    head = await run_git(sandbox, dest, "rev-parse", "--abbrev-ref", "HEAD")
    sha = await run_git(sandbox, dest, "rev-parse", "HEAD")
    return CloneResult(
        source=source,
        dest=dest,
        branch=head.stdout.strip() if head.exit_code == 0 else None,
        commit=sha.stdout.strip() if sha.exit_code == 0 else None,
    )
