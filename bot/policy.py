"""The answer policy: answer when confident, offer a short choice when close, otherwise fall back."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.retrieval import Candidate


@dataclass(frozen=True)
class PolicyParams:
    answer_threshold: float = 0.55
    choice_threshold: float = 0.40
    answer_margin: float = 0.06
    choice_window: float = 0.12
    max_choices: int = 3
    min_dense_for_answer: float = 0.80
    oos_margin: float = 0.0
    """Fall back when the question is closer (cosine) to an out-of-scope phrasing than to any entry
    by more than this margin."""


@dataclass
class Decision:
    kind: str  # "answer" | "choices" | "fallback"
    best: Candidate | None
    options: list[Candidate] = field(default_factory=list)
    out_of_scope: bool = False


def best_per_topic(cands: list[Candidate]) -> list[Candidate]:
    seen: set[str] = set()
    out = []
    for c in cands:
        if c.topic not in seen:
            seen.add(c.topic)
            out.append(c)
    return out


def decide(cands: list[Candidate], p: PolicyParams, oos_similarity: float = 0.0) -> Decision:
    if not cands:
        return Decision("fallback", None)
    best = cands[0]
    if oos_similarity > max(c.dense for c in cands) + p.oos_margin:
        return Decision("fallback", best, out_of_scope=True)
    if best.score < p.choice_threshold or best.dense < p.min_dense_for_answer:
        return Decision("fallback", best)
    per_topic = best_per_topic(cands)
    runner = per_topic[1] if len(per_topic) > 1 else None
    clear_lead = runner is None or best.score - runner.score >= p.answer_margin
    if best.score >= p.answer_threshold and clear_lead:
        return Decision("answer", best)
    floor = max(p.choice_threshold, best.score - p.choice_window)
    options = [c for c in per_topic if c.score >= floor][: p.max_choices]
    if len(options) == 1 and best.score >= p.answer_threshold:
        return Decision("answer", best)
    return Decision("choices", best, options)
