"""Definitions in git: `workflows apply -f`, `workflows export SLUG` and offline `validate`."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promptpilot.cli.client import OK, REFUSED, USAGE, Api, CliError, connect, out, segment
from promptpilot.settings import Settings
from schema.definition import WorkflowDefinition


@dataclass
class DefinitionFile:
    """One definition file: its path, the JSON it holds, or why it holds none."""

    path: Path
    raw: Any = None
    problems: list[str] = field(default_factory=list)

    @property
    def slug(self) -> str | None:
        """The workflow the file defines: its `slug`, else its `id`."""
        if not isinstance(self.raw, dict):
            return None
        value = self.raw.get("slug") or self.raw.get("id")
        return value if isinstance(value, str) and value else None


def definition_files(paths: list[str]) -> list[Path]:
    """Each FILE given, and the `*.json` files directly in each DIR given, sorted by name."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found += sorted(p for p in path.glob("*.json") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(USAGE, f"{given}: no such file or directory")
    if not found:
        raise CliError(USAGE, f"no *.json definition files in {', '.join(paths)}")
    return found


def read_definition(path: Path) -> DefinitionFile:
    """The file's JSON; a file that is not a JSON object becomes a problem at pointer `/`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(USAGE, f"{path}: cannot read: {exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return DefinitionFile(path, problems=[f"/: not JSON: {exc}"])
    if not isinstance(raw, dict):
        return DefinitionFile(path, raw, problems=["/: a definition is a JSON object"])
    return DefinitionFile(path, raw)


def offline_problems(settings: Settings, raw: Any) -> list[str]:
    """The API's save checks without a server (``api.definition_checks.save_checks`` with this
    installation's settings, and the slug rules of the create route). Stored prompts and
    child workflows a definition names are looked up only by the server."""
    from api.definition_checks import save_checks
    from api.routes.workflows import RESERVED_SLUGS
    from api.workflow_lookup import as_uuid
    from definition.limits import LimitExceeded
    from definition.validation import DefinitionInvalid

    try:
        definition = save_checks(settings, raw)
    except LimitExceeded as exc:
        return [f"{exc.problem.pointer or '/'}: {exc.problem.message}"]
    except DefinitionInvalid as exc:
        return [f"{p.pointer or '/'}: {p.message}" for p in exc.problems]
    if definition.id in RESERVED_SLUGS or as_uuid(definition.id) is not None:
        what = "a UUID" if definition.id not in RESERVED_SLUGS else "a reserved slug"
        where = "/slug" if "id" not in raw else "/id"
        return [f"{where}: '{definition.id}' is {what}; a workflow's slug may not be one"]
    return []


async def validate(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot validate FILE...`: offline, exit 1 when any definition is refused."""
    code = OK
    for path in definition_files(args.files):
        found = read_definition(path)
        problems = found.problems or offline_problems(settings, found.raw)
        if problems:
            code = REFUSED
            out(f"{path}: refused")
            for line in problems:
                out(f"  {line}")
        else:
            steps = len(found.raw.get("steps") or [])
            out(f"{path}: ok ({found.slug}, {steps} step{'s' if steps != 1 else ''})")
    return code


def canonical(raw: Any, *, strict: bool) -> Any:
    """A definition with every default filled in, as the API stores it; None if it does not
    parse here (then the API decides)."""
    try:
        dumped = WorkflowDefinition.model_validate(raw, strict=strict).model_dump(mode="json")
    except ValidationError:
        return None
    if isinstance(dumped, dict):
        dumped.pop("slug", None)  # `slug` is `id` when given: one spelling is no change
    return dumped


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def same_definition(local: Any, stored: Any) -> bool:
    """Whether applying ``local`` over ``stored`` would change nothing."""
    mine = canonical(local, strict=True)
    if mine is None:
        return False  # the API refuses it or reads it otherwise: let it answer
    theirs = canonical(stored, strict=False)
    if theirs is None:  # stored by a newer API than this CLI knows: compare as written
        return bool(_without_nulls(local) == _without_nulls(stored))
    return bool(mine == theirs)


async def _apply_one(api: Api, found: DefinitionFile, dry_run: Settings | None) -> str:
    """Create or update one workflow; the line saying what changed. CliError when refused.
    With ``dry_run`` (the settings to check offline with) nothing is written."""
    slug = found.slug
    if slug is None:
        raise CliError(REFUSED, "refused", ["/id: a definition needs an `id` (its slug)"])
    status, body = await api.call("GET", f"/api/workflows/{segment(slug)}", ok=(200, 404))
    stored = body.get("workflow") if status == 200 else None
    if stored is not None and same_definition(found.raw, stored.get("definition")):
        return f"unchanged {slug} (version {stored['currentVersion']})"
    if dry_run is not None:
        if problems := offline_problems(dry_run, found.raw):
            raise CliError(REFUSED, "refused", problems)
        return (f"would create {slug}" if stored is None
                else f"would update {slug} to version {stored['currentVersion'] + 1}")
    if stored is None:
        _, body = await api.call("POST", "/api/workflows", json=found.raw)
        return f"created {slug} (version {body['workflow']['currentVersion']})"
    _, body = await api.call("PUT", f"/api/workflows/{segment(slug)}", json=found.raw)
    return f"updated {slug} to version {body['workflow']['currentVersion']}"


async def apply(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot workflows apply -f FILE_OR_DIR`: each file on its own; exit 1 if any was
    refused. A file refused while others went in is tried again after them, so a workflow
    may name a child workflow defined in a file later in the listing. `--dry-run` writes
    nothing: it says what would change, with changed definitions checked offline."""
    files = [read_definition(path) for path in definition_files(args.files)]
    results: dict[Path, str] = {}
    refused: dict[Path, CliError] = {}
    pending = [f for f in files if not f.problems]
    for found in files:
        if found.problems:
            refused[found.path] = CliError(REFUSED, "refused", found.problems)
    async with connect(settings, args) as api:
        while pending:
            retry: list[DefinitionFile] = []
            for found in pending:
                try:
                    results[found.path] = await _apply_one(
                        api, found, settings if args.dry_run else None)
                    refused.pop(found.path, None)
                except CliError as exc:
                    if exc.code != REFUSED:
                        raise  # the API is unreachable or refuses the key: stop here
                    refused[found.path] = exc
                    retry.append(found)
            pending = retry if len(retry) < len(pending) else []
    for found in files:
        if found.path in results:
            out(f"{found.path}: {results[found.path]}")
        else:
            error = refused[found.path]
            out(f"{found.path}: refused" + ("" if error.message == "refused"
                                            else f": {error.message}"))
            for line in error.problems:
                out(f"  {line}")
    return REFUSED if refused else OK


def _write(path: Path, text: str) -> None:
    # A one-shot command with nothing else on its loop: a blocking write costs nothing.
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(USAGE, f"{path}: cannot write: {exc}") from exc


async def export(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot workflows export SLUG`: the current definition, as `apply` takes it."""
    async with connect(settings, args) as api:
        path = f"/api/workflows/{segment(args.slug)}"
        if args.version is not None:
            _, body = await api.call("GET", f"{path}/versions/{args.version}")
            definition = (body.get("version") or {}).get("definition")
        else:
            _, body = await api.call("GET", path)
            definition = body["workflow"]["definition"]
    text = json.dumps(definition, indent=2, ensure_ascii=False)
    if args.output:
        _write(Path(args.output), text + "\n")
    else:
        out(text)
    return OK


async def list_workflows(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot workflows list`: the environment's workflows and their current versions."""
    async with connect(settings, args) as api:
        _, body = await api.call("GET", "/api/workflows")
    header = ("SLUG", "VERSION", "UPDATED (UTC)", "NAME")
    rows = [(w["slug"], str(w["currentVersion"]), str(w["updatedAt"])[:19].replace("T", " "),
             w["name"]) for w in body.get("workflows") or []]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip())
    return OK
