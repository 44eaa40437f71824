"""Legal and procedure documents (the second tier): import, check, list, build the index, search and
evaluate.

    ldtbxh documents import PATH...        add DOCX/PDF/HTML/Markdown/text files or folders
    ldtbxh documents check                 validate catalog.yaml, supersession.yaml and the files' hashes
    ldtbxh documents list                  the catalogue
    ldtbxh documents build                 build the documents index (progress bar)
    ldtbxh search --jsonl [--k 10]         ranked hits for one question per line on stdin
    ldtbxh eval-docs FILE.jsonl            recall@k and MRR@10 against gold citations or gold files
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import typer

from bot.config import Settings
from handlers.cli_common import settings as cli_settings

documents_app = typer.Typer(help="Import, check, list and index legal and procedure documents.",
                            no_args_is_help=True)


def _settings() -> Settings:
    return cli_settings()


def _date(value: str | None, flag: str) -> dt.date | None:
    if not value:
        return None
    from indexer.documents.metadata import parse_date

    d = parse_date(value)
    if d is None:
        typer.echo(f"Lỗi: {flag} phải là ngày YYYY-MM-DD hoặc DD/MM/YYYY (got '{value}')", err=True)
        raise typer.Exit(2)
    return d


@documents_app.command("import")
def documents_import(
    paths: list[Path] = typer.Argument(..., exists=True, help="Files or folders (DOCX, PDF with text, HTML, "
                                       "Markdown, plain text)."),
    number: str = typer.Option(None, help="Document number, e.g. 55/2023/NĐ-CP (overrides detection)."),
    doc_type: str = typer.Option(None, "--type", help="Document type, e.g. 'Nghị định', 'Quyết định'."),
    title: str = typer.Option(None, help="Title (overrides detection)."),
    issuer: str = typer.Option(None, help="Issuing body, e.g. 'Chính phủ'."),
    signed: str = typer.Option(None, help="Signing date YYYY-MM-DD."),
    effective: str = typer.Option(None, help="Effective date YYYY-MM-DD."),
    status: str = typer.Option(None, help="in_force | partly_superseded | superseded | expired | retired."),
    topic: list[str] = typer.Option([], "--topic", help="Topic id the document serves (repeatable)."),
    into: str = typer.Option(None, help="Sub-folder of knowledge/documents/texts/ to put the files in."),
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per file."),
) -> None:
    """Import documents: convert, detect number/type/title/issuer/dates, check the structure, then copy
    the text under knowledge/documents/texts/ and record it in catalog.yaml.

    A file that cannot be read (scanned PDF without text, password, unknown structure) is reported and
    nothing of it is written. A file whose number cannot be found is imported under its file name, with
    a warning. Rebuild afterwards: `ldtbxh documents build`.
    """
    from indexer.documents.catalog import STATUSES
    from indexer.documents.importer import Overrides, import_paths

    settings = _settings()
    if status and status not in STATUSES:
        typer.echo(f"Lỗi: --status phải là một trong {', '.join(STATUSES)}", err=True)
        raise typer.Exit(2)
    if number and len(paths) > 1 or number and any(p.is_dir() for p in paths):
        typer.echo("Lỗi: --number chỉ dùng khi nhập một tệp (--number applies to a single file)", err=True)
        raise typer.Exit(2)
    ov = Overrides(number=number, type=doc_type, title=title, issuer=issuer,
                   signed=_date(signed, "--signed"), effective=_date(effective, "--effective"),
                   status=status, topics=list(topic))
    try:
        results = import_paths(paths, knowledge or settings.knowledge_dir, ov, into=into, dry_run=dry_run)
    except ValueError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    failed = [r for r in results if not r.ok]
    for r in results:
        if as_json:
            typer.echo(json.dumps(r.__dict__, ensure_ascii=False))
            continue
        if r.ok:
            docs = ", ".join(r.documents[:4]) + (f" (+{len(r.documents) - 4})" if len(r.documents) > 4 else "")
            typer.echo(f"OK   {r.path} -> {r.target}: {docs}; {r.articles} điều")
            for w in r.warnings:
                typer.echo(f"     cảnh báo: {w}")
        else:
            typer.echo(f"LỖI {r.path}: {r.error}")
    if not as_json:
        verb = "sẽ nhập" if dry_run else "đã nhập"
        typer.echo(f"{len(results) - len(failed)} tệp {verb}, {len(failed)} tệp lỗi (không ghi gì cho tệp lỗi). "
                   + ("" if dry_run else "Dựng lại chỉ mục: ldtbxh documents build"))
    if failed:
        raise typer.Exit(1)


@documents_app.command("check")
def documents_check(
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
) -> None:
    """Validate catalog.yaml and supersession.yaml and check every shipped file against its sha256."""
    from indexer.documents.catalog import load_catalog, load_supersession, sha256_file
    from indexer.documents.index import _topic_ids

    kdir = knowledge or _settings().knowledge_dir
    docs_dir = kdir / "documents"
    cat = load_catalog(docs_dir, _topic_ids(kdir))
    sups, sup_errors = load_supersession(docs_dir)
    errors = list(cat.errors) + sup_errors
    for d in cat.documents:
        if d.file:
            p = docs_dir / d.file
            if not p.exists():
                errors.append(f"{d.number}: file {d.file} is missing")
            elif d.sha256 and sha256_file(p) != d.sha256:
                errors.append(f"{d.number}: {d.file} changed since import (sha256 differs): re-import it")
    for s in sups:
        if cat.get(s.document) is None:
            errors.append(f"supersession.yaml: {s.document} is not in the catalogue")
    for e in errors:
        typer.echo(e)
    for w in cat.warnings:
        typer.echo(f"cảnh báo (warning): {w}")
    shipped = sum(1 for d in cat.documents if d.file)
    typer.echo(f"{len(cat.documents)} documents ({shipped} with a shipped text), {len(sups)} supersession "
               f"entries, {len(errors)} error(s)")
    if errors:
        raise typer.Exit(1)


@documents_app.command("list")
def documents_list(
    status: str = typer.Option(None, help="Only documents with this status."),
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
) -> None:
    """List the catalogue: number, type, status, effective date, file."""
    from indexer.documents.catalog import load_catalog

    cat = load_catalog((knowledge or _settings().knowledge_dir) / "documents")
    for d in cat.documents:
        if status and d.status != status:
            continue
        eff = d.effective.isoformat() if d.effective else "?"
        typer.echo(f"{d.number:<34} {d.type:<18} {d.status:<17} {eff}  {d.file or '-'}")


@documents_app.command("build")
def documents_build(
    knowledge: Path = typer.Option(None, help="Knowledge directory (default: LDTBXH_KNOWLEDGE_DIR)."),
    workers: int = typer.Option(None, help="Processes for text processing (default: up to 2)."),
    no_publish: bool = typer.Option(False, "--no-publish", help="Build the version but do not switch to it."),
) -> None:
    """Build the documents index (passages, BM25 over words and folded syllables, dense vectors)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.embedder import settings_embedder
    from indexer.documents.index import CatalogInvalid, DocIndexError, build_doc_index

    settings = _settings()
    embedder = settings_embedder(settings, progress=lambda m: typer.echo(m, err=True))
    labels = {"read": "Đọc văn bản", "text": "Xử lý văn bản", "embed": "Tính vector"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=False) as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(labels.get(stage, stage), total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        try:
            m = build_doc_index(knowledge or settings.knowledge_dir, settings.index_root, embedder,
                                passage_prefix=settings.passage_prefix, workers=workers, progress=progress,
                                publish_now=not no_publish)
        except CatalogInvalid as exc:
            bar.stop()
            for e in exc.errors:
                typer.echo(e, err=True)
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        except DocIndexError as exc:
            bar.stop()
            typer.echo(f"Lỗi: {exc}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"Documents index {m.version}: {m.documents} documents, {m.articles} articles "
               f"({m.duplicates} duplicates merged), {m.passages} passages, {m.units} vectors "
               f"({m.reused_vectors} reused), model {m.model}, {m.build_seconds}s {m.timings}")


def _assistant(settings: Settings) -> Any:
    """The curated tier (its retriever, and the legal basis of its entries for the documents tier)."""
    from bot.assistant import Assistant
    from indexer.index import IndexError_

    try:
        a = Assistant.from_settings(settings)
    except IndexError_ as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    a.retriever.warm_up()
    return a


def _searcher(settings: Settings, embedder: Any = None) -> Any:
    from bot.doc_search import DocSearcher
    from indexer.documents.index import DocIndexError

    try:
        s = DocSearcher.from_settings(settings, embedder=embedder)
    except (DocIndexError, RuntimeError) as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    s.warm_up()
    return s


def search(
    jsonl: bool = typer.Option(False, "--jsonl", help="Read one question per line on stdin; print JSON lines."),
    question: str = typer.Argument(None, help="A question (without --jsonl)."),
    k: int = typer.Option(10, "--k", min=1, max=100, help="Hits per tier."),
    tier: str = typer.Option("both", help="entries | passages | both"),
) -> None:
    """Print the ranked hits for each question: curated entries and document passages, each
    {kind: entry|passage, id, topic, document, citation, source_file, score}. With both tiers, the passages
    are ranked as the dialogue ranks them, helped by the legal basis of the closest curated entries."""
    settings = _settings()
    assistant = _assistant(settings) if tier in ("entries", "both") else None
    searcher = (_searcher(settings, assistant.retriever.embedder if assistant else None)
                if tier in ("passages", "both") else None)

    def run(q: str) -> dict[str, Any]:
        hits: list[dict[str, Any]] = []
        hints = []
        if assistant is not None:
            from bot.assistant import HINT_ENTRIES

            res = assistant.retriever.search(q, k=max(k, HINT_ENTRIES))  # the hints as the dialogue has them
            hints = assistant.legal_hints(res)
            hits += [{"kind": "entry", "id": c.entry_id, "topic": c.topic, "document": None,
                      "citation": None, "source_file": None, "score": c.score} for c in res.candidates[:k]]
        if searcher is not None:
            for h in searcher.search(q, k=k, hints=hints).hits:
                hits.append({"kind": "passage", "id": h.id, "topic": h.topic, "document": h.document,
                             "citation": h.citation, "source_file": h.source_file, "score": h.score,
                             "effective": h.effective, "superseded": h.superseded, "text": h.text})
        return {"q": q, "hits": hits}

    if jsonl:
        for line in sys.stdin:
            q = line.strip()
            if q:
                typer.echo(json.dumps(run(q), ensure_ascii=False))
        return
    if not question:
        typer.echo("Hãy nhập câu hỏi, hoặc dùng --jsonl", err=True)
        raise typer.Exit(2)
    for h in run(question)["hits"]:
        if h["kind"] == "entry":
            typer.echo(f"[entry]   {h['score']:.3f}  {h['id']}  ({h['topic']})")
        else:
            typer.echo(f"[passage] {h['score']:.3f}  {h['citation']}  [{h['effective']}]"
                       + ("  (ĐÃ BỊ THAY THẾ)" if h["superseded"] else ""))


def eval_docs(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="JSONL: {q, gold: [{document, article}]} or {q, gold_files: [...]}."),
    k: int = typer.Option(10, "--k", min=1, max=100, help="Recall is measured at 1, 3, 5 and k."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    show_errors: bool = typer.Option(False, "--errors", help="Also list the questions whose gold is not found."),
    alone: bool = typer.Option(False, "--alone", help="The documents index alone, without the legal basis of "
                                                      "the closest curated entries."),
) -> None:
    """Document retrieval: recall@k and MRR@10 against gold citations (document + article, any source
    file) or gold source files, overall, with and without diacritics, and per area. By default the passages
    are ranked as the dialogue ranks them, helped by the legal basis of the closest curated entries; the
    figures are then also given without the questions that the knowledge nearly contains (`no_near_copy`)."""
    from bot.doc_eval import evaluate_docs, format_docs_report, near_copy_test
    from indexer.knowledge import load_knowledge

    settings = _settings()
    if alone:
        metrics, rows = evaluate_docs(_searcher(settings), file, k=k)
    else:
        assistant = _assistant(settings)
        kb = load_knowledge(settings.knowledge_dir)
        phrasings = [t for e in kb.entries for f, t in e.passages if f in ("question", "paraphrase")]
        metrics, rows = evaluate_docs(
            _searcher(settings, assistant.retriever.embedder), file, k=k,
            hints=lambda q: assistant.legal_hints(assistant.retriever.search(q)),
            near_copy=near_copy_test(phrasings))
    typer.echo(json.dumps(metrics, ensure_ascii=False, indent=2) if as_json else format_docs_report(metrics))
    if show_errors:
        for r in rows:
            if r["rank"] is None or r["rank"] > 3:
                typer.echo(json.dumps(r, ensure_ascii=False))
