"""Hardened git: the argument list and environment that keep git from running anything a repository
supplies. Standard library only, because Reynolds imports it too when it clones task workspaces.

A repository's own config (``.git/config``, and whatever it includes) may name programs: hooks, an
fsmonitor, a pager, an editor, an external diff, textconv, clean/smudge filters, merge drivers, gpg,
credential helpers, an ssh command. Config given on the command line is read last, so ``git_argv``
overrides every one of those keys; per-driver keys (``filter.<name>.*``) can only be overridden by name,
so callers list the repository's config first (``CONFIG_LISTING``) and pass ``config_drivers(listing)``.
``git_env`` keeps the system and global config out and fixes the transport allow-list.
"""

from __future__ import annotations

from collections.abc import Iterable

# (key, value) pairs applied to every command; values that name a program are "false" or empty, both of
# which git reads as "run nothing" (an empty filter or credential helper disables it).
OVERRIDES = (
    ("safe.bareRepository", "explicit"),  # an embedded bare repo is never discovered by walking up
    ("safe.directory", "*"),  # sandbox uids never own the tree; everything ownership guards is off below
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("core.askPass", ""),
    ("core.sshCommand", "ssh -o BatchMode=yes"),
    ("core.sharedRepository", "group"),  # the tree is shared by the sandbox group (workspace.share_tree)
    ("credential.helper", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("log.showSignature", "false"),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("submodule.recurse", "false"),
    ("gc.auto", "0"),  # `gc --auto` detaches into the background
    ("maintenance.auto", "false"),
    ("color.ui", "false"),
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.ssh.allow", "always"),
)
# Transports git may use; `file` (local paths, file://) only where the caller allows it.
PROTOCOLS = ("https", "ssh")
# Subcommands that accept these flags (and otherwise honour diff.external / diff.<driver>.textconv).
EXT_DIFF_COMMANDS = frozenset({"diff", "log", "show", "whatchanged"})
TEXTCONV_COMMANDS = EXT_DIFF_COMMANDS | {"blame", "grep"}
# Per-driver keys that name a program, and the value that disables each.
DRIVER_KEYS = {
    "filter": (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false")),
    "diff": (("command", ""), ("textconv", "")),
    "merge": (("driver", "false"),),
}
# For `clone --upload-pack=` of a local path: git clears `-c` settings (GIT_CONFIG_PARAMETERS) for the
# local upload-pack it starts, and a tree another uid owns is otherwise "dubious ownership".
LOCAL_UPLOAD_PACK = "git -c safe.directory=* -c core.hooksPath=/dev/null upload-pack"
# Lists every config key git would read in a repository (NUL-separated names); it runs no program.
CONFIG_LISTING = ("config", "--null", "--name-only", "--list")


def config_drivers(listing: str) -> list[tuple[str, str]]:
    """(section, name) of each filter/diff/merge driver a ``CONFIG_LISTING`` output defines."""
    found: set[tuple[str, str]] = set()
    for key in listing.split("\0"):
        section, _, rest = key.partition(".")
        name, _, _leaf = rest.rpartition(".")
        if section.lower() in DRIVER_KEYS and name:
            found.add((section.lower(), name))
    return sorted(found)


def git_argv(*args: str, drivers: Iterable[tuple[str, str]] = ()) -> list[str]:
    """``git`` with every repository-supplied program disabled, then ``args`` (the subcommand first).

    ``drivers`` are the repository's own (section, name) drivers from ``config_drivers()``; each is switched off.
    """
    if not args or args[0].startswith("-"):
        raise ValueError("git_argv takes the subcommand first; global options are fixed here")
    argv = ["git", "--no-pager"]
    pairs = list(OVERRIDES)
    for section, name in drivers:
        if "=" in name or "\n" in name:  # `-c` splits at the first '='; such a name cannot be overridden
            raise ValueError(f"refusing a repository whose config names a {section} driver {name!r}")
        pairs += [(f"{section}.{name}.{key}", value) for key, value in DRIVER_KEYS[section]]
    for key, value in pairs:
        argv += ["-c", f"{key}={value}"]
    command, rest = args[0], list(args[1:])
    flags = ["--no-ext-diff"] if command in EXT_DIFF_COMMANDS else []
    flags += ["--no-textconv"] if command in TEXTCONV_COMMANDS else []
    return [*argv, command, *flags, *rest]


def git_env(allow_file: bool = False) -> dict[str, str]:
    """Environment for git: no system or global config, no prompts, pager or editor, and only the allowed
    transports (``file`` too when ``allow_file``, e.g. to clone a local repository in tests)."""
    protocols = [*PROTOCOLS, "file"] if allow_file else list(PROTOCOLS)
    return {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "",
        "GIT_PAGER": "cat",
        "GIT_EDITOR": "false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
        # overrides any protocol.*.allow a repository's config sets
        "GIT_ALLOW_PROTOCOL": ":".join(protocols),
    }
