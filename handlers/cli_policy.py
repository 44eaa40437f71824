"""``ldtbxh policy ...``: fit the answer policy on labelled questions and show the one in use."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from handlers.cli_common import settings as cli_settings

policy_app = typer.Typer(help="Fit and inspect the answer policy (when to answer, offer choices or decline).",
                         no_args_is_help=True)


@policy_app.command("fit")
def policy_fit(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                       help="JSONL files of labelled questions: {q, expect, also?, tags}."),
    folds: int = typer.Option(10, min=2, max=50, help="Folds of the cross-validation."),
    seed: int = typer.Option(0, help="Seed of the (first) fold assignment."),
    repeats: int = typer.Option(5, min=1, max=20,
                                help="Repeat the cross-validation with this many fold assignments and pool "
                                     "the held-out figures (one assignment can move top-1 by over a point)."),
    out: Path = typer.Option(None, help="Where to write the policy (default: <knowledge>/policy.json)."),
    show_errors: bool = typer.Option(False, "--errors", help="List every held-out question handled wrongly (first fold assignment)."),
    entries: Path = typer.Option(None, exists=True, dir_okay=False,
                                 help="Some of the same questions labelled with their right entries "
                                      "(tests/data/dev-v2-entries.jsonl): adds entry-level top-1."),
) -> None:
    """Fit the ranker, the scope model and the thresholds; print the cross-validated figures.

    Every question is searched once with the current index; the fit is repeated on k-1 folds and scored
    on the held-out fold (near-copies stay in one fold), and the whole is repeated with --repeats fold
    assignments. The printed figures are those held-out ones, pooled.
    The policy fitted on all questions is written to knowledge/policy.json; `ldtbxh index build` then
    publishes it with the next index version.
    """
    from bot.assistant import Assistant
    from bot.evaluation import format_report, mistakes
    from bot.policy_fit import collect, fit_and_validate, load_rows
    from indexer.index import IndexError_

    settings = cli_settings()
    try:
        assistant = Assistant.from_settings(settings, require_policy=False)
    except IndexError_ as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    assistant.warm_up()
    try:
        rows = load_rows(files, entries)
    except ValueError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(2) from None
    with typer.progressbar(length=len(rows), label="Tìm kiếm", file=None) as bar:
        samples = collect(assistant.retriever.search, rows, progress=lambda done, total: bar.update(1),
                          calc_topic=assistant.calc_topic,
                          smalltalk=lambda q: assistant.smalltalk.match(q) is not None)
    policy, figures, cv_rows = fit_and_validate(samples, files, folds=folds, seed=seed, repeats=repeats,
                                                model=assistant.retriever.embedder.name)
    target = out or (settings.knowledge_dir / "policy.json")
    policy.save(target)
    typer.echo(f"Cross-validated ({folds} folds × {repeats} fold assignments, {len(samples)} questions):")
    typer.echo(format_report({"overall": figures["overall"], "by_tag": figures["by_tag"]}))
    typer.echo(f"Policy {policy.version} written to {target} (thresholds: "
               + json.dumps(policy.thresholds.__dict__) + "); run `ldtbxh index build` to publish it.")
    if show_errors:
        for e in mistakes(cv_rows):
            typer.echo(json.dumps(e, ensure_ascii=False))


@policy_app.command("show")
def policy_show() -> None:
    """Print the policy of the current index version and how it was fitted."""
    from bot.policy import Policy, PolicyError
    from indexer.index import current_version

    settings = cli_settings()
    version = current_version(settings.index_root)
    path = settings.index_root / "versions" / (version or "") / "policy.json"
    try:
        policy = Policy.load(path)
    except PolicyError as exc:
        typer.echo(f"Lỗi: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"version": policy.version, **policy.to_dict()}, ensure_ascii=False, indent=1))
