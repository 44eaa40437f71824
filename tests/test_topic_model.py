"""The topic classifiers trained on the knowledge base."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from indexer.topic_model import Tfidf, TopicModel, lexical_tokens

TEXTS = ["trợ cấp thất nghiệp hằng tháng", "mức hưởng thất nghiệp 60% lương", "thương binh giám định thương tật",
         "trợ cấp thương binh theo tỷ lệ", "giấy phép lao động người nước ngoài"]
TOPICS = ["tctn", "tctn", "ncc", "ncc", "gpld"]


def test_tfidf_matches_scikit_learn() -> None:
    ours = Tfidf.fit(TEXTS)
    ref = TfidfVectorizer(analyzer=lexical_tokens, sublinear_tf=True).fit(TEXTS)
    a = ours.transform(["tro cap that nghiep cua thuong binh"]).toarray()[0]
    b = ref.transform(["tro cap that nghiep cua thuong binh"]).toarray()[0]
    order = [ref.vocabulary_[t] for t in sorted(ours.vocab, key=ours.vocab.__getitem__)]
    assert np.allclose(a, b[order])


def test_classifiers_learn_topics_and_domain_and_survive_a_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = {"tctn": rng.normal(size=8), "ncc": rng.normal(size=8), "gpld": rng.normal(size=8)}
    vecs = np.array([centers[t] + rng.normal(scale=0.1, size=8) for t in TOPICS], dtype=np.float32)
    away = rng.normal(size=8)  # where the out-of-scope phrasings' vectors lie
    oos_vecs = np.array([away + rng.normal(scale=0.1, size=8) for _ in range(3)], dtype=np.float32)
    m = TopicModel.fit(["tctn", "ncc", "gpld", "empty"], list(zip(TOPICS, TEXTS, strict=True)), vecs, TOPICS,
                       ["thời tiết ngày mai", "nấu canh chua", "đăng ký kết hôn"], oos_vecs)
    lp = m.lexical_logprob(["huong tro cap that nghiep"])[0]
    assert m.topics[int(np.argmax(lp))] == "tctn" and lp[3] < -20  # a topic without entries is never likely
    assert m.topics[int(np.argmax(m.dense_logprob(centers["ncc"][None])[0]))] == "ncc"
    dom = m.domain_logit(["thương binh được trợ cấp", "thời tiết ngày mai có mưa"])
    assert dom[0] > dom[1]
    vdom = m.vector_domain_logit(np.array([centers["tctn"], away], dtype=np.float32))
    assert vdom[0] > 0 > vdom[1]
    m.save(tmp_path)
    m2 = TopicModel.load(tmp_path)
    assert np.allclose(m2.lexical_logprob(["thuong binh"]), m.lexical_logprob(["thuong binh"]))
    assert np.allclose(m2.domain_logit(["nấu canh"]), m.domain_logit(["nấu canh"]))
    assert np.allclose(m2.vector_domain_logit(oos_vecs), m.vector_domain_logit(oos_vecs))


def test_domain_classifier_is_a_deterministic_average_of_bagged_fits() -> None:
    """Two builds of the same knowledge give the same domain classifier (an index build is reproducible),
    and it is one linear model (the bags' coefficients averaged)."""
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(TEXTS), 8)).astype(np.float32)
    oos = ["thời tiết ngày mai", "nấu canh chua", "đăng ký kết hôn", "xe buýt số 5 chạy mấy giờ"]
    fit = [TopicModel.fit(["tctn", "ncc", "gpld"], list(zip(TOPICS, TEXTS, strict=True)), vecs, TOPICS, oos)
           for _ in range(2)]
    assert np.array_equal(fit[0].domain_coef, fit[1].domain_coef) and fit[0].domain_bias == fit[1].domain_bias
    assert fit[0].domain_coef.shape == (len(fit[0].tfidf.vocab),)
    assert fit[0].domain_logit(["trợ cấp thất nghiệp"])[0] > fit[0].domain_logit(["nấu canh chua"])[0]
