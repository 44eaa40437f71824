"""The answer policy: answer when confident, offer a short choice when close, otherwise decline.

The policy is fitted on labelled questions (``ldtbxh policy fit``, :mod:`bot.policy_fit`) and shipped as a
versioned artefact, ``knowledge/policy.json``, which the index build copies into each index version (so a
rollback brings back the policy that went with that index). It holds:

* a **ranker**: weights over the per-topic features of :data:`bot.retrieval.TOPIC_FEATURES`; a softmax
  over the topics turns them into the probability that each topic is the one asked about;
* a **scope model**: logistic regression over :data:`bot.retrieval.QUESTION_FEATURES` (standardised)
  giving the probability that the question is the Department's business at all;
* **thresholds**: answer directly when P(top topic) × P(in scope) ≥ ``answer_min``; otherwise offer
  the topics whose probability is at least ``choice_ratio`` × P(top topic) (at most ``max_choices``)
  when P(in scope) ≥ ``choice_min_scope`` and the options hold at least ``choice_min_mass`` of the
  probability; otherwise decline (naming the right agency when the question is closest to a phrasing of
  ``out_of_scope.yaml``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.retrieval import QUESTION_FEATURES, TOPIC_FEATURES, Candidate, SearchResult

POLICY_FORMAT = 1


class PolicyError(RuntimeError):
    """The policy artefact is missing or does not fit the retrieval features."""


@dataclass(frozen=True)
class Thresholds:
    answer_min: float
    choice_min_scope: float
    choice_ratio: float
    choice_min_mass: float
    max_choices: int = 3


@dataclass(frozen=True)
class Policy:
    ranker: tuple[float, ...]
    scope_weights: tuple[float, ...]
    scope_bias: float
    scope_mean: tuple[float, ...]
    scope_scale: tuple[float, ...]
    thresholds: Thresholds
    fitted: dict[str, Any] = field(default_factory=dict)
    """How it was fitted: data files and their digests, model, date, cross-validated figures."""

    # --- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"format": POLICY_FORMAT, "topic_features": list(TOPIC_FEATURES),
             "question_features": list(QUESTION_FEATURES), **d}
        return d

    @property
    def version(self) -> str:
        body = json.dumps({k: v for k, v in self.to_dict().items() if k != "fitted"}, sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:12]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        if d.get("format") != POLICY_FORMAT:
            raise PolicyError(f"policy format {d.get('format')} is not {POLICY_FORMAT}: run `ldtbxh policy fit`")
        if tuple(d.get("topic_features", ())) != TOPIC_FEATURES or \
                tuple(d.get("question_features", ())) != QUESTION_FEATURES:
            raise PolicyError("the policy was fitted on other retrieval features: run `ldtbxh policy fit`")
        return cls(
            ranker=tuple(d["ranker"]), scope_weights=tuple(d["scope_weights"]), scope_bias=float(d["scope_bias"]),
            scope_mean=tuple(d["scope_mean"]), scope_scale=tuple(d["scope_scale"]),
            thresholds=Thresholds(**d["thresholds"]), fitted=dict(d.get("fitted") or {}))

    @classmethod
    def load(cls, path: Path) -> Policy:
        if not path.exists():
            raise PolicyError(f"no answer policy at {path}: run `ldtbxh policy fit`")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            raise PolicyError(f"{path}: not a valid policy ({exc})") from None

    # --- scoring ----------------------------------------------------------------------------
    def topic_probabilities(self, topic_features: np.ndarray) -> np.ndarray:
        z = topic_features @ np.asarray(self.ranker)
        z = z - z.max()
        p = np.exp(z)
        return p / p.sum()

    def scope_probability(self, question_features: np.ndarray) -> float:
        x = (question_features - np.asarray(self.scope_mean)) / np.asarray(self.scope_scale)
        return float(1 / (1 + np.exp(-(x @ np.asarray(self.scope_weights) + self.scope_bias))))


@dataclass
class Option:
    topic: str
    probability: float
    entry: Candidate


@dataclass
class Decision:
    kind: str  # "answer" | "choices" | "fallback"
    options: list[Option]
    """The topics offered (one for an answer), best first; for a fallback, the best-ranked topics."""
    scope: float
    """Probability that the question is the Department's business."""
    out_of_scope: bool = False
    """Declined as another agency's business (the reply names the agency)."""
    related: list[Option] = field(default_factory=list)
    """For an answer: the next plausible topics, offered below it as related questions (see
    :func:`related_from`)."""

    @property
    def best(self) -> Candidate | None:
        return self.options[0].entry if self.options else None


def decide_from(probs: np.ndarray, scope: float, th: Thresholds) -> tuple[str, list[int]]:
    """The decision on already computed probabilities: the kind and the indices of the offered topics.
    Shared by :meth:`Policy.decide` and the fitting code, so both decide the same way."""
    order = np.argsort(-probs)
    p1 = float(probs[order[0]])
    if p1 * scope >= th.answer_min:
        return "answer", [int(order[0])]
    if scope >= th.choice_min_scope:
        opts = [int(i) for i in order[: th.max_choices] if probs[i] >= th.choice_ratio * p1]
        if float(probs[opts].sum()) >= th.choice_min_mass:
            return "choices", opts
    return "fallback", [int(i) for i in order[: th.max_choices]]


RELATED_MIN = 0.02
"""Under a direct answer, the topics ranked second and third are offered as related questions when the
ranker gives each at least this probability (at most :data:`MAX_RELATED`)...

Chosen on tests/data/dev-v2.jsonl, 10-fold cross-validation × 5 fold assignments (policies fitted without
the held-out fold): of 1,024 held-out direct answers, 8 % carry a related question at 0.02 (0.08 buttons an
answer), and 18 of the 23 answers on the wrong neighbouring topic then show the right one. Lower values add
buttons without catching more (0.005: 22 % of answers, the same 18); higher ones lose them (0.05: 5)."""
MAX_RELATED = 2
"""...so that an answer shows at most three topics: its own and two related ones."""


def related_from(probs: np.ndarray, kind: str) -> list[int]:
    """Indices of the topics offered as related questions under a reply of ``kind``: for an answer, those
    ranked 2nd and 3rd whose probability reaches :data:`RELATED_MIN`; none for other replies. Shared by the
    assistant and the fitting code."""
    if kind != "answer":
        return []
    order = np.argsort(-probs)
    return [int(i) for i in order[1: 1 + MAX_RELATED] if probs[i] >= RELATED_MIN]


CALC_TOP_TOPICS = 3
"""A calculator answers only if the policy ranks its topic among the best this many topics (this many
plus two when the question carries the citizen's own numbers: a rate, months, a salary)..."""
CALC_MIN_SCOPE = 0.1
"""...and does not think the question is clearly another agency's business. A keyword and an amount cue
alone ("bao nhiêu" and "liệt sĩ" in a question about graves) do not make an amount question. Chosen on
tests/data/amount-questions.jsonl (92 of 95 taken by the right calculator, 0 of 30 other questions) and
dev-v2 (28 taken, 28 on the expected topic, whatever the gate): see docs/calculators.md."""


def calculation_allowed(probs: np.ndarray, scope: float, topics: list[str], calc_topic: str,
                        has_numbers: bool = False) -> bool:
    """Whether a calculator that recognised an amount question on ``calc_topic`` may answer it. Shared by
    the assistant and the fitting code (cross-validated figures count calculations)."""
    k = CALC_TOP_TOPICS + (2 if has_numbers else 0)
    top = {topics[i] for i in np.argsort(-probs)[:k]}
    return calc_topic in top and scope >= CALC_MIN_SCOPE


def decide(result: SearchResult, policy: Policy) -> Decision:
    probs = policy.topic_probabilities(result.topic_features)
    scope = policy.scope_probability(result.question_features)
    kind, idxs = decide_from(probs, scope, policy.thresholds)
    options = [Option(result.topics[i], float(probs[i]), result.best_entry[result.topics[i]])
               for i in idxs if result.topics[i] in result.best_entry]
    if not options:
        kind = "fallback"
    related = [Option(result.topics[i], float(probs[i]), result.best_entry[result.topics[i]])
               for i in related_from(probs, kind) if result.topics[i] in result.best_entry]
    # A decline names another agency when the question is closer to one of its phrasings
    # (out_of_scope.yaml) than to any passage of the knowledge base.
    best_cosine = float(result.question_features[QUESTION_FEATURES.index("best_cosine")])
    out_of_scope = kind == "fallback" and result.oos_group is not None and result.oos_similarity >= best_cosine
    return Decision(kind, options, scope, out_of_scope, related)


DOC_MIN_SCOPE = 0.4
"""A question the curated tier declines is searched in the legal texts only when the answer policy thinks
it is the Department's business at least this likely (and it was not declined as another agency's
business: those are never searched)..."""
DOC_TOP_TOPICS = 2
"""...the best clause is quoted only when its topic is among the policy's best this many topics for the
question (a clause of no topic, or of a topic the curated tier does not see in the question, is not)..."""
DOC_MIN_SCORE = 0.468
"""...and its fused score (bot.doc_search) reaches this.

The three were chosen by scripts/calibrate_documents.py on tests/data/dev-v2.jsonl with the real model
(e5-small, ONNX) and the shipped documents index: among the 37 plain declines (13 in scope, 24 out of
scope), a document reply counts right when the clause's topic is the expected one, wrong otherwise, and
always wrong on an out-of-scope question; the grid setting with the most right replies under 0 out-of-scope
replies and ≥ 85 % precision (ties: the stricter) is kept. 5-fold cross-validated (chosen on four folds,
counted on the fifth): 4 declines became right document replies, 0 wrong, 0 out-of-scope answered; on the
whole set 5 right, 0 wrong. Without the topic condition no setting kept 0 out-of-scope replies in
cross-validation. See docs/documents.md ("In the dialogue").

Re-run on 2026-11-30 after the answer policy stopped declining short questions (the length feature gone):
the policy now declines 28 dev-v2 questions plainly, 5 of them in scope, and no setting of the grid turns
one of them into a right document reply; the old gate (0.2) answered one out-of-scope question (a
naturalisation question, scope 0.22, with a work-permit clause). The scope gate is raised to 0.4, the
least strict of the grid that answers none of the 28: declines with a diffuse topic ranking but a clear
scope (≥ 0.4) may still get a clause. After the next refit (small talk out of the fit: 24 plain declines,
2 in scope) it still answers none."""


def topic_rank(probs: np.ndarray, topics: list[str], topic: str | None) -> int | None:
    """Where the policy ranks ``topic`` (0: its best topic), None when it is not one of its topics."""
    if topic is None or topic not in topics:
        return None
    return int((probs > probs[topics.index(topic)]).sum())


def document_gate(kind: str, out_of_scope: bool, scope: float, min_scope: float = DOC_MIN_SCOPE) -> bool:
    """Whether the legal texts may be searched for a question: the curated tier declined it (``kind`` of
    its decision), not as another agency's business, and the policy thinks it is the Department's."""
    return kind == "fallback" and not out_of_scope and scope >= min_scope


def document_allowed(kind: str, out_of_scope: bool, scope: float, score: float, rank: int | None,
                     min_scope: float = DOC_MIN_SCOPE, min_score: float = DOC_MIN_SCORE,
                     top_topics: int = DOC_TOP_TOPICS) -> bool:
    """Whether such a question may be answered with the best clause of the legal texts (fused score
    ``score``; ``rank``: :func:`topic_rank` of its topic). Shared by the assistant and the calibration
    (scripts/calibrate_documents.py), so both decide the same way."""
    return (document_gate(kind, out_of_scope, scope, min_scope) and score >= min_score
            and rank is not None and rank < top_topics)
