"""The old rulebook's files as committed at a git ref, read with plain `git` commands (no
checkout, so the working tree is never touched)."""

from __future__ import annotations

import posixpath
import subprocess
from pathlib import Path

from retainer.errors import RetainerError, did_you_mean
from retainer.rulebook.loader import PROJECT_FILE


def files_at_git_ref(project_root: Path, ref: str) -> dict[str, str]:
    """`retainer.yml` and the rulebook files as committed at `ref`, keyed by their path in the
    project (the `rulebook:` entries of that commit's config, default `rulebook/`)."""
    root = Path(project_root).resolve()
    if not root.is_dir():
        raise RetainerError(f"{root} is not a directory",
                            hint="pass --project DIR pointing at a project")
    found = _git(root, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise RetainerError(f"{root} is not in a git repository",
                            hint="the impact diff compares with a committed rulebook: run "
                                 "'git init' and commit the project first, or compare with a "
                                 "recorded run (--against-run RUN_ID)")
    top = Path(found.stdout.decode().strip()).resolve()
    prefix = root.relative_to(top).as_posix()
    commit = _commit(top, ref)
    project_file = _inside(prefix, PROJECT_FILE) or PROJECT_FILE
    text = _show(top, commit, project_file)
    if text is None:
        raise RetainerError(f"the project did not exist at {ref}: {project_file} is not in "
                            "that commit",
                            hint="compare with a later commit, e.g. --against HEAD")
    files = {PROJECT_FILE: text}
    for entry in _rulebook_entries(text):
        path = _inside(prefix, entry)
        if path is None:
            continue  # outside the project: the loader finds nothing there either
        for name in _tree_files(top, commit, path):
            content = _show(top, commit, name)
            if content is not None:
                files[posixpath.relpath(name, prefix)] = content
    return files


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RetainerError("git is not installed (or not on PATH)",
                            hint="install git to compare with a committed rulebook") from None


def _commit(top: Path, ref: str) -> str:
    # A ref starting with "-" would reach git as an option.
    if not ref.strip() or ref.startswith("-"):
        raise RetainerError(f"'{ref}' is not a git ref", hint="e.g. --against HEAD~1 or main")
    found = _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.decode().strip()
    if _git(top, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise RetainerError(f"unknown git ref '{ref}': the repository has no commits yet",
                            hint="commit the project first: git add -A && git commit")
    names = _git(top, "for-each-ref", "--format=%(refname:short)", "refs/heads",
                 "refs/tags").stdout.decode().split()
    raise RetainerError(f"unknown git ref '{ref}'", hint=did_you_mean(ref, names) or
                        "use a branch, a tag or a commit, e.g. HEAD, HEAD~1 or main")


def _inside(prefix: str, relative: str) -> str | None:
    """`relative` (from the project) as a path from the repository top, if it stays inside."""
    if posixpath.isabs(relative):
        return None
    joined = posixpath.normpath(posixpath.join(prefix, relative))
    inside_project = prefix == "." or joined == prefix or joined.startswith(prefix + "/")
    return joined if inside_project and not joined.startswith("..") else None


def _show(top: Path, commit: str, path: str) -> str | None:
    shown = _git(top, "show", f"{commit}:{path}")
    return shown.stdout.decode("utf-8", errors="replace") if shown.returncode == 0 else None


def _tree_files(top: Path, commit: str, path: str) -> list[str]:
    listed = _git(top, "ls-tree", "-r", "-z", "--name-only", commit, "--", path)
    names = [n for n in listed.stdout.decode().split("\0") if n]
    if names == [path]:
        return names  # a file named in `rulebook:`
    return sorted(n for n in names if n.endswith((".yml", ".yaml")))


def _rulebook_entries(project_text: str) -> tuple[str, ...]:
    """The `rulebook:` setting, read leniently: the loader reports a malformed one."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    try:
        document = YAML(typ="safe").load(project_text)
    except YAMLError:
        return ("rulebook",)
    entries = document.get("rulebook", "rulebook") if isinstance(document, dict) else None
    if isinstance(entries, str):
        return (entries,)
    if isinstance(entries, list) and all(isinstance(e, str) for e in entries):
        return tuple(entries)
    return ("rulebook",)
