"""Evaluation counts replies as the citizen sees them."""

from __future__ import annotations

from bot.evaluation import Row, block, record


def row(expect: str | None, kind: str, shown: list[str], ranked: list[str] | None = None,
        also: str | None = None) -> Row:
    r = Row(q="?", expect=expect, tags=[], also=also)
    return record(r, kind, [(t, t + "-e") for t in shown], ranked if ranked is not None else shown)


def test_fallback_is_a_miss_even_when_the_ranking_was_right() -> None:
    b = block([row("a", "fallback", ["a"], ranked=["a", "b"])])
    assert b["top1"] == 0 and b["ranking"] == 1 and b["too_cautious"] == 1 and b["recall3"] == 0


def test_choices_count_when_the_first_option_is_right() -> None:
    b = block([row("a", "choices", ["a", "b"]), row("a", "choices", ["b", "a"]), row("a", "choices", ["b", "c"])])
    assert b["top1"] == 1 / 3 and b["recall3"] == 2 / 3 and b["wrong_choices"] == 1 / 3 and b["direct"] == 0


def test_direct_kinds_and_the_second_acceptable_topic() -> None:
    b = block([row("a", "answer", ["a"]), row("a", "document", ["b"], also="b"), row("a", "calculation", ["c"])])
    assert b["top1"] == 2 / 3 and b["direct"] == 1 and b["confident_wrong"] == 1 / 3


def test_any_other_kind_declines_an_out_of_scope_question() -> None:
    b = block([row(None, "fallback", []), row(None, "smalltalk", []), row(None, "choices", ["a"]),
               row(None, "answer", ["a"])])
    assert b["declined"] == 0.5 and b["oos_answered"] == 0.25 and "top1" not in b


def test_entry_level_top1() -> None:
    r = Row(q="?", expect="a", tags=[], entries=["a-2"])
    record(r, "answer", [("a", "a-1")], ["a"])
    r2 = Row(q="?", expect="a", tags=[], entries=["a-1"])
    record(r2, "answer", [("a", "a-1")], ["a"])
    assert block([r, r2])["entry_top1"] == 0.5


def test_a_calculation_on_the_right_topic_is_right_at_entry_level() -> None:
    calc = record(Row(q="?", expect="a", tags=[], entries=["a-1"]), "calculation", [("a", "")], ["a"])
    wrong = record(Row(q="?", expect="a", tags=[], entries=["a-1"]), "calculation", [("b", "")], ["b"])
    fallback = record(Row(q="?", expect="a", tags=[], entries=["a-1"]), "fallback", [], ["a"])
    assert block([calc, wrong, fallback])["entry_top1"] == 1 / 3


def test_a_related_question_under_an_answer_counts_for_recall_but_not_top1() -> None:
    wrong = record(Row(q="?", expect="a", tags=[]), "answer", [("b", "b-e")], ["b", "a"], related=[("a", "a-e")])
    right = record(Row(q="?", expect="a", tags=[]), "answer", [("a", "a-e")], ["a", "b"], related=[("b", "b-e")])
    b = block([wrong, right])
    assert b["top1"] == 0.5 and b["confident_wrong"] == 0.5 and b["recall3"] == 1 and b["by_related"] == 0.5
    fallback = record(Row(q="?", expect="a", tags=[]), "fallback", [], ["a"], related=[("a", "a-e")])
    assert fallback.related == [] and block([fallback])["recall3"] == 0  # only an answer offers them
