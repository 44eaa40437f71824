"""Evaluation on a JSONL file of {"q": ..., "expect": topic | null, "tags": [...]}.

In-scope questions (expect is a topic the knowledge base covers) are scored on the ranking of distinct
topics: top-1 accuracy, recall@3 and MRR@10. Out-of-scope questions (expect null) count as declined
when the assistant falls back. A confident wrong answer is a direct answer with the wrong topic
(or any direct answer to an out-of-scope question).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.assistant import Assistant
from bot.policy import best_per_topic


@dataclass
class Row:
    q: str
    expect: str | None
    tags: list[str]
    kind: str = ""
    topics: list[str] = field(default_factory=list)
    latency_ms: float = 0.0


def read_jsonl(path: Path) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            rows.append(Row(q=d["q"], expect=d.get("expect"), tags=list(d.get("tags") or [])))
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path}:{n}: not a valid evaluation row ({exc})") from None
    return rows


def run(assistant: Assistant, rows: list[Row]) -> list[Row]:
    for r in rows:
        t0 = time.perf_counter()
        out = assistant.ask(r.q)
        r.latency_ms = (time.perf_counter() - t0) * 1000
        r.kind = out.reply.kind
        cands = out.search.candidates if out.search else []
        r.topics = [c.topic for c in best_per_topic(cands)]
        if r.kind == "answer" and out.reply.topic:
            # The answered topic is what the citizen saw first.
            r.topics = [out.reply.topic] + [t for t in r.topics if t != out.reply.topic]
    return rows


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    i = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[i]


def metrics(rows: list[Row], covered: set[str]) -> dict[str, Any]:
    def block(rs: list[Row]) -> dict[str, Any]:
        ins = [r for r in rs if r.expect is not None and r.expect in covered]
        oos = [r for r in rs if r.expect is None]
        out: dict[str, Any] = {"n": len(rs), "in_scope": len(ins), "out_of_scope": len(oos)}
        if ins:
            ranks = [r.topics.index(r.expect) + 1 if r.expect in r.topics[:10] else 0 for r in ins]
            out["top1"] = sum(1 for k in ranks if k == 1) / len(ins)
            out["recall3"] = sum(1 for k in ranks if 1 <= k <= 3) / len(ins)
            out["mrr"] = sum(1 / k for k in ranks if k) / len(ins)
            out["answered"] = sum(1 for r in ins if r.kind == "answer") / len(ins)
            out["choices"] = sum(1 for r in ins if r.kind == "choices") / len(ins)
            out["fallback"] = sum(1 for r in ins if r.kind == "fallback") / len(ins)
        if oos:
            out["declined"] = sum(1 for r in oos if r.kind == "fallback") / len(oos)
        scored = ins + oos
        if scored:
            wrong = [r for r in scored if r.kind == "answer" and (not r.topics or r.topics[0] != r.expect)]
            out["confident_wrong"] = len(wrong) / len(scored)
        return out

    lat = [r.latency_ms for r in rows]
    tags = sorted({t for r in rows for t in r.tags})
    uncovered = sorted({r.expect for r in rows if r.expect is not None and r.expect not in covered})
    return {
        "overall": block(rows),
        "by_tag": {t: block([r for r in rows if t in r.tags]) for t in tags},
        "latency_ms": {"p50": round(_pct(lat, 50), 1), "p95": round(_pct(lat, 95), 1),
                       "max": round(max(lat), 1) if lat else 0.0},
        "skipped_uncovered_topics": uncovered,
    }


def format_report(m: dict[str, Any]) -> str:
    cols = ["n", "top1", "recall3", "mrr", "declined", "confident_wrong", "answered", "choices", "fallback"]

    def fmt(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["group".ljust(14) + "".join(c.rjust(16) for c in cols)]
    groups = [("overall", m["overall"])] + sorted(m["by_tag"].items())
    for name, b in groups:
        lines.append(name.ljust(14) + "".join(fmt(b.get(c, "-")).rjust(16) for c in cols))
    lat = m["latency_ms"]
    lines.append(f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  max {lat['max']}")
    if m["skipped_uncovered_topics"]:
        lines.append("not scored (topic not in the knowledge base): " + ", ".join(m["skipped_uncovered_topics"]))
    return "\n".join(lines)


def mistakes(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        bad = (r.expect is None and r.kind != "fallback") or (
            r.expect is not None and (not r.topics or r.topics[0] != r.expect or r.kind == "fallback"))
        if bad:
            out.append({"q": r.q, "expect": r.expect, "kind": r.kind, "got": r.topics[:3]})
    return out


def covered_topics(assistant: Assistant) -> set[str]:
    return {e["topic"] for e in assistant.retriever.index.entries.values()}


def evaluate_file(assistant: Assistant, path: Path) -> tuple[dict[str, Any], list[Row]]:
    rows = run(assistant, read_jsonl(path))
    return metrics(rows, covered_topics(assistant)), rows


__all__ = ["evaluate_file", "format_report", "metrics", "mistakes", "read_jsonl", "run"]
