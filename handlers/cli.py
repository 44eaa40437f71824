"""ldtbxh: the virtual assistant of a provincial Department of Labour, Invalids and Social Affairs.

Build the index, ask questions, evaluate, manage the database and serve the channels.
Settings come from LDTBXH_* environment variables or a .env file (see README).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from bot.config import ConfigError, Settings, load_settings
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
app.command()(serve)

try:  # storage commands (db upgrade, dossiers import) live in their own module
    from handlers.cli_db import db_app, dossiers_app

    app.add_typer(db_app, name="db")
    app.add_typer(dossiers_app, name="dossiers")
except ImportError:  # pragma: no cover - only while the storage module is absent
    pass


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _say(msg: str) -> None:
    typer.echo(msg, err=True)


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
    from indexer.knowledge import load_knowledge

    settings = _settings()
    kb = load_knowledge(knowledge or settings.knowledge_dir)
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

    from indexer.embed import make_embedder
    from indexer.index import KnowledgeInvalid, build_index

    settings = _settings()
    embedder = make_embedder(settings.embedding_model, settings.embedding_backend, settings.models_dir,
                             progress=_say)
    labels = {"text": "Xử lý văn bản", "embed": "Tính vector"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False, console=None) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        try:
            m = build_index(knowledge or settings.knowledge_dir, settings.index_root, embedder,
                            query_prefix=settings.query_prefix, passage_prefix=settings.passage_prefix,
                            segmented_for_model=settings.model_wants_segmented,
                            ann_threshold=settings.ann_threshold, progress=progress,
                            publish_now=not no_publish)
        except KnowledgeInvalid as exc:
            bar.stop()
            for err in exc.errors:
                typer.echo(str(err), err=True)
            typer.echo(f"{exc}", err=True)
            raise typer.Exit(1) from None
    state = "built" if no_publish else "built and published"
    typer.echo(f"Index {m.version} {state}: {m.entries} entries, {m.units} passages, model {m.model} "
               f"(dim {m.dim}, {m.ann}), {m.reused_vectors} vectors reused, {m.build_seconds}s")


@index_app.command("list")
def index_list() -> None:
    """List the index versions; the current one is marked with *."""
    from indexer.index import current_version, list_versions

    settings = _settings()
    cur = current_version(settings.index_root)
    versions = list_versions(settings.index_root)
    if not versions:
        typer.echo("No index yet: run `ldtbxh index build`.")
    for m in versions:
        mark = "*" if m.version == cur else " "
        typer.echo(f"{mark} {m.version}  {m.entries} entries  {m.model}  built {m.built_at}")


@index_app.command("use")
def index_use(version: str) -> None:
    """Switch to an existing index version (running servers pick it up on their next reload)."""
    from indexer.index import IndexError_, publish

    try:
        publish(_settings().index_root, version)
    except IndexError_ as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Current index: {version}")


@index_app.command("rollback")
def index_rollback() -> None:
    """Switch back to the version built before the current one."""
    from indexer.index import IndexError_, rollback

    try:
        prev = rollback(_settings().index_root)
    except IndexError_ as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Rolled back to {prev}")


def _reply_json(question: str, r: Any) -> dict[str, Any]:
    return {
        "q": question, "kind": r.kind, "topic": r.topic, "entry_id": r.entry_id,
        "score": r.score, "candidates": r.candidates, "text": r.text,
        "buttons": [b.label for b in r.buttons],
    }


def _dialogue(settings: Settings) -> Any:
    from bot.db import SchemaBehindError
    from bot.dialogue import Dialogue
    from bot.runtime import AssistantHolder
    from bot.store import Store
    from indexer.index import IndexError_

    try:
        store = Store(settings)
        holder = AssistantHolder(settings, active_version=store.active_kb_version)
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
    jsonl: bool = typer.Option(False, "--jsonl", help="Read one question per line on stdin; print JSON lines."),
    chat: str = typer.Option("cli", help="Chat id, so that a conversation (lookup, follow-up) can continue."),
) -> None:
    """Ask the assistant a question and print the reply as a citizen would see it.

    The message goes through the whole dialogue: questions, dossier status by receipt number
    ("tra cứu hồ sơ H41.22-241105-0012"), small talk and requests to be called back.
    """
    from bot.messages import Incoming

    settings = _settings()
    dialogue = _dialogue(settings)

    def run(q: str) -> Any:
        return dialogue.handle(Incoming("cli", chat, text=q))[-1]

    if jsonl:
        for line in sys.stdin:
            q = line.strip()
            if q:
                typer.echo(json.dumps(_reply_json(q, run(q)), ensure_ascii=False))
        return
    if not question:
        typer.echo("Hãy nhập câu hỏi, ví dụ: ldtbxh ask \"trợ cấp thất nghiệp được bao nhiêu\"", err=True)
        raise typer.Exit(2)
    reply = run(question)
    if as_json:
        typer.echo(json.dumps(_reply_json(question, reply), ensure_ascii=False, indent=2))
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
    """Measure top-1, recall@3, MRR, declined out-of-scope, confident wrong answers and latency."""
    from bot.evaluation import evaluate_file, format_report, mistakes

    settings = _settings()
    assistant = _assistant(settings)
    assistant.warm_up()
    m, rows = evaluate_file(assistant, file)
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
