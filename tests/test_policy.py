"""The answer policy on hand-made candidate lists."""

from __future__ import annotations

from bot.policy import PolicyParams, decide
from bot.retrieval import Candidate

P = PolicyParams(answer_threshold=0.6, choice_threshold=0.4, answer_margin=0.05, choice_window=0.1,
                 max_choices=3, min_dense_for_answer=0.8)


def c(eid: str, topic: str, score: float, dense: float = 0.9) -> Candidate:
    return Candidate(eid, topic, score, dense, score, score)


def test_no_candidates_falls_back() -> None:
    assert decide([], P).kind == "fallback"


def test_clear_winner_is_answered() -> None:
    d = decide([c("a1", "a", 0.8), c("b1", "b", 0.6)], P)
    assert d.kind == "answer" and d.best and d.best.entry_id == "a1"


def test_same_topic_runner_up_does_not_block_answer() -> None:
    d = decide([c("a1", "a", 0.8), c("a2", "a", 0.79), c("b1", "b", 0.5)], P)
    assert d.kind == "answer"


def test_close_topics_offer_choices_best_first() -> None:
    d = decide([c("a1", "a", 0.7), c("a2", "a", 0.69), c("b1", "b", 0.68), c("c1", "c", 0.62),
                c("d1", "d", 0.61), c("e1", "e", 0.3)], P)
    assert d.kind == "choices"
    assert [o.entry_id for o in d.options] == ["a1", "b1", "c1"]


def test_low_score_falls_back() -> None:
    assert decide([c("a1", "a", 0.35), c("b1", "b", 0.2)], P).kind == "fallback"


def test_low_similarity_falls_back_even_with_lexical_match() -> None:
    assert decide([c("a1", "a", 0.9, dense=0.7)], P).kind == "fallback"


def test_middle_score_single_option_is_choices() -> None:
    d = decide([c("a1", "a", 0.5), c("b1", "b", 0.2)], P)
    assert d.kind == "choices" and [o.entry_id for o in d.options] == ["a1"]


def test_closer_to_out_of_scope_phrasing_falls_back() -> None:
    cands = [c("a1", "a", 0.9, dense=0.91), c("b1", "b", 0.5, dense=0.88)]
    d = decide(cands, P, oos_similarity=0.95)
    assert d.kind == "fallback" and d.out_of_scope
    assert decide(cands, P, oos_similarity=0.90).kind == "answer"
