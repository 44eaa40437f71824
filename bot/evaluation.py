"""Evaluation on a JSONL file of {"q": ..., "expect": topic | null, "also": topic?, "tags": [...]}.

Counted as a citizen experiences the reply (``ldtbxh eval``):

* An in-scope question (``expect`` is a topic) is right at top-1 only when the reply is an answer, a
  quoted document or a calculation on the expected topic (or on ``also``, a second acceptable topic),
  or a choice list whose first option is that topic. A fallback is a miss; so is a question whose topic
  has no content in the knowledge base.
* Recall@3: the expected topic is among the first three topics shown (the answer's and the related
  questions offered under it, or the options). ``by_related`` is the share of in-scope questions whose
  expected topic was shown only as a related question (recall@3 without them is ``recall3 - by_related``).
* An out-of-scope question (``expect`` null) is declined when the reply is anything but an answer, a
  quoted document, a calculation or choices.
* Every rate is over the in-scope questions, except ``declined`` (over the out-of-scope ones) and
  ``oos_answered`` (out-of-scope questions given a direct answer, over the out-of-scope ones).

Printed beside them: ``ranking`` (the old ranking-only top-1: the best-ranked topic, whatever the reply),
``direct`` (share answered directly), ``wrong_choices`` (choice lists without the expected topic),
``too_cautious`` (fallbacks whose best candidate was right) and ``confident_wrong`` (direct answers on a
wrong topic). With ``entries`` in a row (the acceptable entry ids), ``entry_top1`` counts a right-topic
reply as right only when it shows one of those entries first (a calculation on the right topic counts as
right: it has no entry).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIRECT_KINDS = frozenset({"answer", "document", "calculation"})
"""Reply kinds that answer the question directly."""
SHOWN_KINDS = DIRECT_KINDS | {"choices"}
"""Reply kinds that show the citizen one or more topics; anything else declines."""


@dataclass
class Row:
    q: str
    expect: str | None
    tags: list[str]
    also: str | None = None
    entries: list[str] = field(default_factory=list)
    kind: str = ""
    shown: list[str] = field(default_factory=list)
    """Topics shown to the citizen, in order (the answer's, or the options)."""
    shown_entries: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    """Topics offered as related questions under an answer, in order (after ``shown``)."""
    ranked: list[str] = field(default_factory=list)
    """Topics in the retrieval ranking, best first (whatever the reply was)."""
    latency_ms: float = 0.0

    def accepts(self, topic: str | None) -> bool:
        return topic is not None and topic in (self.expect, self.also)


def read_jsonl(path: Path) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            rows.append(Row(q=d["q"], expect=d.get("expect"), tags=list(d.get("tags") or []),
                            also=d.get("also"), entries=list(d.get("entries") or [])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a valid evaluation row ({exc})") from None
    return rows


def record(row: Row, kind: str, shown: list[tuple[str, str]], ranked: Iterable[str],
           latency_ms: float = 0.0, related: Iterable[tuple[str, str]] = ()) -> Row:
    """Fill ``row`` from the reply the citizen got: its kind, the (topic, entry id) pairs it showed
    (the answer's, or the options of a choice list), the related questions offered under an answer and
    the retrieval ranking behind it."""
    row.kind = kind
    row.latency_ms = latency_ms
    row.ranked = list(dict.fromkeys(ranked))
    if kind in SHOWN_KINDS:
        row.shown = [t for t, _ in shown]
        row.shown_entries = [e for _, e in shown]
    else:
        row.shown, row.shown_entries = [], []
    row.related = [t for t, _ in related] if kind == "answer" else []
    return row


def run(ask: Callable[[str], Any], rows: list[Row]) -> list[Row]:
    """Ask every question through ``ask`` (``Assistant.ask``: returns an ``Outcome``)."""
    for r in rows:
        t0 = time.perf_counter()
        out = ask(r.q)
        ranked = [c.topic for c in out.search.candidates] if out.search else []
        record(r, out.reply.kind, out.shown, ranked, (time.perf_counter() - t0) * 1000, out.related)
    return rows


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    i = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[i]


def _entry_right(r: Row) -> bool:
    """The reply shows one of the right entries first; a calculation on the right topic counts as right
    (it answers the amount question with the citizen's own figure, which no entry does)."""
    if r.kind not in SHOWN_KINDS or not r.shown:
        return False
    if r.kind == "calculation":
        return r.accepts(r.shown[0])
    return bool(r.shown_entries) and r.shown_entries[0] in r.entries


def block(rs: list[Row]) -> dict[str, Any]:
    """The figures of one group of rows (see the module docstring)."""
    ins = [r for r in rs if r.expect is not None]
    oos = [r for r in rs if r.expect is None]
    out: dict[str, Any] = {"n": len(rs), "in_scope": len(ins), "out_of_scope": len(oos)}
    if ins:
        n = len(ins)
        out["top1"] = sum(1 for r in ins if r.kind in SHOWN_KINDS and r.shown and r.accepts(r.shown[0])) / n
        out["recall3"] = sum(1 for r in ins if any(r.accepts(t) for t in (r.shown + r.related)[:3])) / n
        out["by_related"] = sum(1 for r in ins if not any(r.accepts(t) for t in r.shown[:3])
                                and any(r.accepts(t) for t in (r.shown + r.related)[:3])) / n
        out["ranking"] = sum(1 for r in ins if r.ranked and r.accepts(r.ranked[0])) / n
        out["direct"] = sum(1 for r in ins if r.kind in DIRECT_KINDS) / n
        out["confident_wrong"] = sum(
            1 for r in ins if r.kind in DIRECT_KINDS and not (r.shown and r.accepts(r.shown[0]))) / n
        out["wrong_choices"] = sum(
            1 for r in ins if r.kind == "choices" and not any(r.accepts(t) for t in r.shown)) / n
        out["too_cautious"] = sum(
            1 for r in ins if r.kind not in SHOWN_KINDS and r.ranked and r.accepts(r.ranked[0])) / n
        labelled = [r for r in ins if r.entries]
        if labelled:
            out["entry_n"] = len(labelled)
            out["entry_top1"] = sum(1 for r in labelled if _entry_right(r)) / len(labelled)
    if oos:
        out["declined"] = sum(1 for r in oos if r.kind not in SHOWN_KINDS) / len(oos)
        out["oos_answered"] = sum(1 for r in oos if r.kind in DIRECT_KINDS) / len(oos)
    return out


def metrics(rows: list[Row], covered: set[str] | None = None) -> dict[str, Any]:
    lat = [r.latency_ms for r in rows]
    tags = sorted({t for r in rows for t in r.tags})
    uncovered = sorted({r.expect for r in rows if r.expect is not None and covered is not None
                        and r.expect not in covered})
    return {
        "overall": block(rows),
        "by_tag": {t: block([r for r in rows if t in r.tags]) for t in tags},
        "latency_ms": {"p50": round(_pct(lat, 50), 1), "p95": round(_pct(lat, 95), 1),
                       "max": round(max(lat), 1) if lat else 0.0},
        "uncovered_topics": uncovered,
    }


COLUMNS = ["n", "top1", "recall3", "declined", "confident_wrong", "wrong_choices", "direct",
           "too_cautious", "ranking", "by_related"]


def format_report(m: dict[str, Any], columns: list[str] | None = None) -> str:
    cols = list(columns or COLUMNS)
    if "entry_top1" in m["overall"] and "entry_top1" not in cols:
        cols.append("entry_top1")

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["group".ljust(12) + "".join(c.rjust(16) for c in cols)]
    groups = [("overall", m["overall"])] + sorted(m["by_tag"].items())
    for name, b in groups:
        lines.append(name.ljust(12) + "".join(fmt(b.get(c, "-")).rjust(16) for c in cols))
    lat = m.get("latency_ms")
    if lat:
        lines.append(f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  max {lat['max']}")
    if m.get("uncovered_topics"):
        lines.append("topics without content (their questions count as misses): "
                     + ", ".join(m["uncovered_topics"]))
    return "\n".join(lines)


def mistakes(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if r.expect is None:
            bad = r.kind in SHOWN_KINDS
        else:
            bad = not (r.kind in SHOWN_KINDS and r.shown and r.accepts(r.shown[0]))
        if bad:
            out.append({"q": r.q, "expect": r.expect, "kind": r.kind, "shown": r.shown[:3],
                        "ranked": r.ranked[:3]})
    return out


__all__ = ["COLUMNS", "DIRECT_KINDS", "Row", "block", "evaluate_file", "format_report", "metrics", "mistakes",
           "read_jsonl", "record", "run"]


def evaluate_file(ask: Callable[[str], Any], path: Path, covered: set[str] | None = None
                  ) -> tuple[dict[str, Any], list[Row]]:
    """Ask every question of a JSONL file and return the figures and the rows."""
    rows = run(ask, read_jsonl(path))
    return metrics(rows, covered), rows
