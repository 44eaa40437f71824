"""ldtbxh: the virtual assistant of a provincial Department of Labour, Invalids and Social Affairs.

Build the index, ask questions, evaluate, manage the database and serve the channels.
Settings come from LDTBXH_* environment variables or a .env file (see README).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from bot.config import Settings
from handlers.cli_common import actor as _actor
from handlers.cli_common import say as _say
from handlers.cli_common import settings as _settings
from handlers.cli_db import db_app, dossiers_app
from handlers.cli_documents import documents_app, eval_docs, search
from handlers.cli_policy import policy_app
from handlers.cli_serve import serve
from handlers.cli_telegram import telegram_app
from handlers.cli_users import users_app

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode=None)
index_app = typer.Typer(help="Build, list, switch and roll back knowledge index versions.", no_args_is_help=True)
knowledge_app = typer.Typer(help="Check the knowledge base in knowledge/.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(knowledge_app, name="knowledge")
app.add_typer(telegram_app, name="telegram")
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")
app.add_typer(dossiers_app, name="dossiers")
app.add_typer(policy_app, name="policy")
app.add_typer(documents_app, name="documents")
app.command()(serve)
app.command("search")(search)
app.command("eval-docs")(eval_docs)


def _admin(settings: Settings, progress: Any = None) -> Any:
    """The knowledge administration, the same service the console uses."""
    from bot.embedder import settings_embedder
    from bot.knowledge_admin import KnowledgeAdmin

    return KnowledgeAdmin(settings, settings_embedder(settings, progress=progress))


def _assistant(settings: Settings) -> Any:
    from bot.assistant import Assistant
    from indexer.index import IndexError_

    try:
        return Assistant.from_settings(settings, progress=_say)
    except IndexError_ as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None


@knowledge_app.command("check")
def knowledge_check(
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
) -> None:
    """Validate every knowledge file; print each error as file:line: message."""
    settings = _settings()
    kb = _admin(settings).validate(knowledge)
    for err in kb.errors:
        typer.echo(str(err))
    topics = {e.topic for e in kb.entries}
    procs = sum(1 for e in kb.entries if e.kind == "procedure")
    review = sum(1 for e in kb.entries if e.needs_review)
    typer.echo(f"{len(kb.entries)} entries ({procs} procedures, {len(kb.entries) - procs} Q&A), "
               f"{len(topics)}/{len(kb.topics)} topics covered, {review} marked needs_review, "
               f"{len(kb.errors)} error(s)")
    if kb.errors:
        raise typer.Exit(1)


@index_app.command("build")
def index_build(
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
    no_publish: bool = typer.Option(False, "--no-publish", help="Build the version but do not switch to it."),
) -> None:
    """Validate the knowledge base and build a new index version, then switch to it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.knowledge_admin import KnowledgeInvalid

    settings = _settings()
    admin = _admin(settings, progress=_say)
    labels = {"text": "Xử lý văn bản", "embed": "Tính vector"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False, console=None) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        try:
            m = admin.build(actor=_actor(), activate=not no_publish, progress=progress, knowledge_dir=knowledge)
        except KnowledgeInvalid as exc:
            bar.stop()
            for err in exc.errors:
                typer.echo(str(err), err=True)
            typer.echo(f"{exc}", err=True)
            raise typer.Exit(1) from None
    state = "built" if no_publish else "built and published"
    typer.echo(f"Index {m.version} {state}: {m.entries} entries, {m.units} passages, model {m.model} "
               f"(dim {m.dim}, {m.ann}), {m.reused_vectors} vectors reused, {m.build_seconds}s")
    from bot.policy import Policy, PolicyError
    from indexer.index import version_path

    policy_file = version_path(settings.index_root, m.version) / "policy.json"
    if policy_file.exists():
        try:
            fitted_model = Policy.load(policy_file).fitted.get("model")
        except PolicyError as exc:
            fitted_model = None
            typer.echo(f"Warning: the answer policy published with this version cannot be used ({exc}). Running "
                       "servers keep serving the previous version and a new server will not start on this one: "
                       "run `ldtbxh policy fit tests/data/dev-v2.jsonl` and build again.", err=True)
        if fitted_model and fitted_model != m.model:
            typer.echo(f"Warning: the answer policy was fitted with {fitted_model}, this index embeds with {m.model}: "
                       "its thresholds may not hold; run `ldtbxh policy fit tests/data/dev-v2.jsonl` and build "
                       "again.", err=True)


@index_app.command("list")
def index_list() -> None:
    """List the index versions; the active one is marked with *."""
    admin = _admin(_settings())
    cur = admin.active()
    versions = admin.versions()
    if not versions:
        typer.echo("No index yet: run `ldtbxh index build`.")
    for m in versions:
        mark = "*" if m.version == cur else " "
        typer.echo(f"{mark} {m.version}  {m.entries} entries  {m.model}  built {m.built_at}")


@index_app.command("use")
def index_use(version: str) -> None:
    """Switch to an existing index version (running servers pick it up on their next reload)."""
    from bot.knowledge_admin import IndexMissing

    try:
        _admin(_settings()).switch(version, actor=_actor())
    except IndexMissing as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Current index: {version}")


@index_app.command("rollback")
def index_rollback() -> None:
    """Switch back to the version built before the active one."""
    from bot.knowledge_admin import IndexMissing

    try:
        prev = _admin(_settings()).rollback(actor=_actor())
    except IndexMissing as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Rolled back to {prev}")


def _reply_json(question: str, r: Any, topic_of: Callable[[str], str | None]) -> dict[str, Any]:
    """A reply as JSON; ``offered``: the entries its buttons offer (a choice list's options, or the related
    questions under an answer), in order, with their topics."""
    return {
        "q": question, "kind": str(r.kind), "topic": r.topic, "entry_id": r.entry_id,
        "score": r.score, "candidates": r.candidates, "citations": r.citations, "text": r.text,
        "buttons": [b.label for b in r.buttons],
        "offered": [{"entry_id": e, "topic": topic_of(e)} for e in r.offered],
    }


def _dialogue(settings: Settings) -> Any:
    from bot.dialogue import Dialogue
    from bot.runtime import AssistantHolder
    from bot.storage import SchemaBehindError, Storage
    from indexer.index import IndexError_

    try:
        store = Storage(settings)
        holder = AssistantHolder(settings)
        holder.check_reload()
    except (SchemaBehindError, IndexError_) as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    d = Dialogue.from_settings(settings, store=store, holder=holder)
    d.flood_per_minute = 0  # the command line is an operator's tool, not a citizen's chat
    return d


@app.command()
def ask(
    question: str = typer.Argument(None, help="The question, in Vietnamese, with or without diacritics."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the reply text."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Read one question per line on stdin; print JSON lines. "
                                                       "Each line is its own conversation unless --chat is given."),
    chat: str = typer.Option(None, help="Chat id, so that a conversation (lookup, follow-up) continues across "
                                        "questions and runs (default: 'cli'; with --jsonl: a new chat per line)."),
) -> None:
    """Ask the assistant a question and print the reply as a citizen would see it.

    The message goes through the whole dialogue: questions, dossier status by receipt number
    ("tra cứu hồ sơ H41.22-241105-0012"), small talk and requests to be called back.
    """
    from bot.messages import Incoming

    settings = _settings()
    dialogue = _dialogue(settings)

    def run(q: str, chat_id: str) -> Any:
        return dialogue.handle(Incoming("cli", chat_id, text=q))[-1]

    def topic_of(entry_id: str) -> str | None:
        e = dialogue.holder.current.entry(entry_id)
        return e["topic"] if e else None

    if jsonl:
        batch = uuid.uuid4().hex[:12]
        for n, line in enumerate(sys.stdin, 1):
            q = line.strip()
            if q:
                reply = run(q, chat or f"cli-{batch}-{n}")
                typer.echo(json.dumps(_reply_json(q, reply, topic_of), ensure_ascii=False))
        return
    if not question:
        typer.echo("Hãy nhập câu hỏi, ví dụ: ldtbxh ask \"trợ cấp thất nghiệp được bao nhiêu\"", err=True)
        raise typer.Exit(2)
    reply = run(question, chat or "cli")
    if as_json:
        typer.echo(json.dumps(_reply_json(question, reply, topic_of), ensure_ascii=False, indent=2))
        return
    typer.echo(reply.text)
    if reply.buttons:
        typer.echo("")
        typer.echo("  ".join(f"[{b.label}]" for b in reply.buttons))


@app.command("eval")
def evaluate(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL: {q, expect, tags} per line."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    show_errors: bool = typer.Option(False, "--errors", help="Also list every question handled wrongly."),
) -> None:
    """Measure the replies as citizens see them: top-1, recall@3, declined, confident wrong answers...

    Run on the questions the policy was fitted on, these are fitted figures, not held-out ones:
    `ldtbxh policy fit` prints the cross-validated figures.
    """
    from bot.evaluation import evaluate_file, format_report, mistakes

    settings = _settings()
    assistant = _assistant(settings)
    assistant.warm_up()
    covered = {e["topic"] for e in assistant.retriever.index.entries.values()}
    m, rows = evaluate_file(assistant.ask, file, covered)
    if as_json:
        typer.echo(json.dumps(m, ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(m))
    if show_errors:
        for e in mistakes(rows):
            typer.echo(json.dumps(e, ensure_ascii=False))


def main() -> None:  # pragma: no cover
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
