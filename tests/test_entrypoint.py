"""The container's entrypoint (scripts/docker-entrypoint.sh) as the unprivileged user it runs as.

There is no Docker engine here, so the container's file system is laid out in a temporary folder: the
image's read-only copy of ``knowledge/`` (owned by root) and a data volume owned by the user. The
entrypoint runs as ``nobody`` (uid 65534; when the tests run as root, ``setpriv`` drops to it, keeping only
the right to *read* the root-owned virtual environment); it must seed the knowledge base into the volume,
migrate, build the index, and leave a knowledge base that user can write: an approved draft is saved, and
survives a second start.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from indexer.index import current_version, list_versions
from tests.support import REPO, TEST_EMBEDDER

NOBODY = 65534
ENTRYPOINT = REPO / "scripts" / "docker-entrypoint.sh"
APPROVE = """
import sys
from pathlib import Path
from indexer.kbwrite import approve_entry
entry_id, _ = approve_entry(Path(sys.argv[1]), topic=sys.argv[2], question="Câu hỏi duyệt trong container?",
                            paraphrases=[], answer="Câu trả lời được cán bộ duyệt.", legal_basis=["Quy chế của Sở"],
                            valid_from="2026-01-01")
print(entry_id)
"""


def as_app_user() -> list[str]:
    if os.geteuid() != 0:
        return []  # already unprivileged
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop to an unprivileged user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


def run(env: dict[str, str], cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*as_app_user(), "sh", str(ENTRYPOINT), *command], env=env, cwd=cwd, text=True,
                          capture_output=True, timeout=600)


def test_entrypoint_seeds_a_writable_knowledge_base_as_an_unprivileged_user(tmp_path: Path) -> None:
    seed = tmp_path / "opt" / "knowledge"  # the image's copy: root's, read-only
    shutil.copytree(REPO / "knowledge", seed)
    for p in [seed, *seed.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    data, home = tmp_path / "data", tmp_path / "home"
    for d in (data, home):
        d.mkdir()
        if os.geteuid() == 0:
            os.chown(d, NOBODY, NOBODY)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home), "PYTHONPATH": str(REPO),
           "LDTBXH_DATA_DIR": str(data), "LDTBXH_KNOWLEDGE_DIR": str(data / "knowledge"),
           "LDTBXH_KNOWLEDGE_SEED": str(seed), "LDTBXH_TEST_EMBEDDER": TEST_EMBEDDER,
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    topic = yaml.safe_load((seed / "topics.yaml").read_text(encoding="utf-8"))["topics"][0]["id"]
    knowledge = data / "knowledge"

    first = run(env, home, "python", "-c", APPROVE, str(knowledge), topic)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "knowledge base seeded" in first.stderr
    entry_id = first.stdout.strip().splitlines()[-1]
    assert entry_id.startswith(f"{topic}-hoi-dap-")
    if os.geteuid() == 0:
        assert (knowledge / "topics.yaml").stat().st_uid == NOBODY
    saved = knowledge / "qa" / f"{topic}.yaml"
    assert entry_id in saved.read_text(encoding="utf-8")
    assert not (seed / "qa" / f"{topic}.yaml").exists() or entry_id not in (
        seed / "qa" / f"{topic}.yaml").read_text(encoding="utf-8")  # the image's copy is untouched
    assert (data / "ldtbxh.sqlite3").is_file() and current_version(data / "index")

    second = run(env, home, "true")  # a new container on the same volume
    assert second.returncode == 0, second.stderr[-3000:]
    assert "seeded" not in second.stderr
    assert entry_id in saved.read_text(encoding="utf-8")  # the approved draft survived
    assert len(list_versions(data / "index")) == 1  # the index was built once


def test_entrypoint_refuses_a_knowledge_base_it_cannot_write(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to lay out files the unprivileged user cannot write")
    data, home = tmp_path / "data", tmp_path / "home"
    shutil.copytree(REPO / "tests" / "data" / "kb-mini", data / "knowledge")  # root's, as the old image had it
    home.mkdir()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home),
           "LDTBXH_DATA_DIR": str(data), "LDTBXH_KNOWLEDGE_DIR": str(data / "knowledge")}
    r = run(env, home, "true")
    assert r.returncode == 1 and "is not writable" in r.stderr
