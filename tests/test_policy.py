"""The fitted answer policy: decisions on given probabilities, persistence, fitting and cross-validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.evaluation import Row
from bot.policy import MAX_RELATED, RELATED_MIN, Policy, PolicyError, Thresholds, decide_from, related_from
from bot.policy_fit import Sample, fit_policy, fit_ranker, groups, predict_rows
from bot.retrieval import QUESTION_FEATURES, TOPIC_FEATURES

TH = Thresholds(answer_min=0.6, choice_min_scope=0.5, choice_ratio=0.2, choice_min_mass=0.5)


def test_confident_in_scope_question_is_answered() -> None:
    assert decide_from(np.array([0.9, 0.05, 0.05]), 0.95, TH) == ("answer", [0])


def test_close_topics_offer_choices_best_first() -> None:
    kind, idxs = decide_from(np.array([0.08, 0.45, 0.35, 0.06, 0.06]), 0.9, TH)
    assert kind == "choices" and idxs == [1, 2]  # 0.08 < 0.2 x 0.45: not offered


def test_out_of_scope_question_is_declined_even_with_a_clear_topic() -> None:
    assert decide_from(np.array([0.9, 0.05, 0.05]), 0.3, TH)[0] == "fallback"


def test_diffuse_probabilities_are_declined() -> None:
    probs = np.full(20, 0.05)
    assert decide_from(probs, 0.9, TH)[0] == "fallback"  # three options hold only 15 %


def test_an_answer_offers_the_next_plausible_topics_as_related_questions() -> None:
    probs = np.array([0.01, 0.9, 0.05, RELATED_MIN + 0.001, RELATED_MIN / 2])
    assert related_from(probs, "answer") == [2, 3]  # ranked 2nd and 3rd, both at least RELATED_MIN
    assert related_from(np.array([0.97, RELATED_MIN / 2, 0.01]), "answer") == []  # a clear answer: none
    assert len(related_from(np.array([0.4, 0.2, 0.2, 0.2]), "answer")) == MAX_RELATED
    assert related_from(probs, "choices") == [] and related_from(probs, "fallback") == []


def _policy() -> Policy:
    return Policy(ranker=tuple(1.0 for _ in TOPIC_FEATURES), scope_weights=tuple(0.0 for _ in QUESTION_FEATURES),
                  scope_bias=3.0, scope_mean=tuple(0.0 for _ in QUESTION_FEATURES),
                  scope_scale=tuple(1.0 for _ in QUESTION_FEATURES), thresholds=TH, fitted={"note": "test"})


def test_policy_round_trips_and_its_version_ignores_the_fitting_notes(tmp_path: Path) -> None:
    p = _policy()
    p.save(tmp_path / "policy.json")
    q = Policy.load(tmp_path / "policy.json")
    assert q == p and q.version == p.version
    d = json.loads((tmp_path / "policy.json").read_text())
    d["fitted"] = {"note": "other"}
    assert Policy.from_dict(d).version == p.version
    d["thresholds"]["answer_min"] = 0.7
    assert Policy.from_dict(d).version != p.version


def test_policy_fitted_on_other_features_is_refused(tmp_path: Path) -> None:
    d = _policy().to_dict()
    d["topic_features"] = ["something_else"]
    (tmp_path / "p.json").write_text(json.dumps(d))
    with pytest.raises(PolicyError, match="policy fit"):
        Policy.load(tmp_path / "p.json")
    with pytest.raises(PolicyError, match="no answer policy"):
        Policy.load(tmp_path / "missing.json")


def _samples(n: int, seed: int = 0) -> list[Sample]:
    """Synthetic questions: topic 0..4; the right topic has a high value on feature 2 (noisy);
    out-of-scope questions have a low first question feature."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        oos = i % 6 == 5
        x = rng.normal(0, 1, (5, len(TOPIC_FEATURES)))
        y = int(rng.integers(0, 5))
        if not oos:
            x[y, 2] += 3.0
        qf = rng.normal(0, 1, len(QUESTION_FEATURES))
        qf[0] += -3.0 if oos else 3.0
        topics = [f"t{j}" for j in range(5)]
        row = Row(q=f"câu hỏi số {i}", expect=None if oos else topics[y], tags=["x"])
        out.append(Sample(row, x, qf, topics, {t: f"{t}-e" for t in topics}, topics, [] if oos else [y]))
    return out


def test_ranker_learns_the_informative_feature() -> None:
    w = fit_ranker([s for s in _samples(200) if s.accept])
    assert int(np.argmax(w)) == 2


def test_cross_validated_policy_meets_its_constraints_on_separable_data() -> None:
    samples = _samples(240)
    rows, policies = predict_rows(samples, fit_policy, folds=5)
    assert len(rows) == len(samples) and len(policies) == 5
    ins = [r for r in rows if r.expect is not None]
    oos = [r for r in rows if r.expect is None]
    right = sum(1 for r in ins if r.shown and r.shown[0] == r.expect)
    assert right / len(ins) > 0.8
    assert sum(1 for r in oos if r.kind == "fallback") / len(oos) > 0.9


def test_near_copies_share_a_fold() -> None:
    rows = [Row("Tôi nghỉ việc thì hưởng trợ cấp thất nghiệp thế nào", "a", []),
            Row("toi nghi viec thi huong tro cap that nghiep the nao", "a", []),
            Row("mức chuẩn người có công là bao nhiêu", "b", [])]
    g = groups(rows)
    assert g[0] == g[1] != g[2]


def test_small_talk_is_counted_as_the_assistant_replies() -> None:
    """A message that small talk answers before any search (a complaint about the bot) is counted as that
    reply in the cross-validation, as `ldtbxh eval` and the channels see it."""
    from dataclasses import replace

    from bot.policy_fit import apply

    samples = _samples(120)
    pol = fit_policy(samples)
    oos = next(s for s in samples if s.row.expect is None)
    assert apply(replace(oos, smalltalk=True), pol).kind == "smalltalk"
    ins = next(s for s in samples if s.row.expect is not None)
    assert apply(replace(ins, smalltalk=True), pol).kind == "smalltalk"


def test_small_talk_does_not_shape_the_policy() -> None:
    """Small talk is answered before the policy: an out-of-scope complaint that looks in scope must not make
    the fitted thresholds stricter (it once raised the choice threshold for every citizen)."""
    from dataclasses import replace

    samples = _samples(120)
    pol = fit_policy(samples)
    oos = next(s for s in samples if s.row.expect is None)
    looks_in_scope = replace(oos, question_features=np.full(len(QUESTION_FEATURES), 5.0), smalltalk=True,
                             topic_features=samples[0].topic_features)
    with_it = fit_policy([*samples, *[looks_in_scope] * 10])
    assert with_it.to_dict() == pol.to_dict()
    as_a_question = fit_policy([*samples, *[replace(looks_in_scope, smalltalk=False)] * 10])
    assert as_a_question.to_dict() != pol.to_dict()  # the same messages, reaching the policy, do shape it


def test_complaints_about_the_bot_get_small_talk_not_a_topic() -> None:
    from bot.smalltalk import SmallTalk

    st = SmallTalk.load(Path(__file__).resolve().parent.parent / "knowledge" / "smalltalk.yaml")
    for text in ["trả lời sai rồi", "bot vô dụng quá", "tra loi lung tung vay", "bạn trả lời không đúng"]:
        intent = st.match(text)
        assert intent is not None and intent.id == "complaint", text
    # Messages about someone else's answer, or a benefit, are questions for the knowledge base.
    for text in ["cán bộ trả lời sai thì khiếu nại ở đâu", "hồ sơ bị trả lời sai", "trợ cấp thất nghiệp sai quá"]:
        assert st.match(text) is None, text


def test_entry_labels_are_merged_into_the_fitted_questions(tmp_path: Path) -> None:
    from bot.policy_fit import load_rows

    dev = tmp_path / "dev.jsonl"
    dev.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in [
        {"q": "trợ cấp thất nghiệp bao nhiêu", "expect": "tctn", "tags": []},
        {"q": "thời tiết mai thế nào", "expect": None, "tags": []}]), encoding="utf-8")
    labels = tmp_path / "entries.jsonl"
    labels.write_text(json.dumps({"q": "trợ cấp thất nghiệp bao nhiêu", "expect": "tctn", "tags": [],
                                  "entries": ["tctn-muc"]}, ensure_ascii=False), encoding="utf-8")
    rows = load_rows([dev], labels)
    assert rows[0].entries == ["tctn-muc"] and rows[1].entries == []
    stray = tmp_path / "stray.jsonl"
    stray.write_text(json.dumps({"q": "câu hỏi khác", "expect": "tctn", "tags": [], "entries": ["tctn-muc"]},
                                ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="not in the fitted files"):
        load_rows([dev], stray)
