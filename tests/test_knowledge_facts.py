"""Facts in the shipped knowledge agree with their legal basis and with each other.

(a) Every ``legal_basis`` line names documents of ``knowledge/documents/catalog.yaml`` and an entry's
    ``valid_from`` is not earlier than the effective date of the newest document it cites.
(b) Every money figure written in an answer ("2.789.000 đồng", "10 triệu đồng") is declared in the
    entry's ``amounts``, and the same benefit and date never carry two amounts, across entries and the
    shared figures of the calculators (``knowledge/calculators/_figures.yaml``, when present).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexer.diacritics import fold
from indexer.knowledge import Amount, Entry, KnowledgeBase, load_knowledge

REPO = Path(__file__).resolve().parent.parent
KNOWLEDGE = REPO / "knowledge"
CATALOG = KNOWLEDGE / "documents" / "catalog.yaml"
FIGURES = KNOWLEDGE / "calculators" / "_figures.yaml"

CATALOG_FIELDS = ("number", "type", "title", "issuer", "signed", "effective", "status")
STATUSES = {"in_force", "partly_superseded", "superseded", "expired", "retired"}
# A document number as cited: "77/2024/NĐ-CP", "4804/VBHN-BLĐTBXH", "06/QĐ-TTg".
DOC_NUMBER = re.compile(r"(?<![\w/])(\d{1,5}/(?:\d{4}/)?[A-Za-zĐđ][\w\-]*)", re.UNICODE)
MONEY = re.compile(
    r"(?P<num>\d{1,3}(?:\.\d{3})+|\d+(?:,\d+)?)\s*(?P<mult>triệu|nghìn|ngàn|tỷ|tỉ)?\s*(?P<unit>đồng|đ)(?!\w)"
    r"|(?P<num2>\d+(?:,\d+)?)\s*(?P<mult2>triệu|nghìn|ngàn|tỷ|tỉ)(?!\w)",
    re.IGNORECASE,
)
# The lower end of a range written once with its unit: "2.000.000 - 2.500.000 đồng", "trên 1.500.000 đến ...".
RANGE_START = re.compile(r"(\d{1,3}(?:\.\d{3})+)\s*(?:-|–|đến)\s*(?=\d{1,3}(?:\.\d{3})+\s*(?:đồng|đ)(?!\w))")
MULTIPLIER = {None: 1, "nghìn": 1_000, "ngàn": 1_000, "triệu": 1_000_000, "tỷ": 1_000_000_000, "tỉ": 1_000_000_000}
EXAMPLE_PREFIX = "vi_du."
"""Benefit keys for worked examples ("800 km x 3.000 đ = 2.400.000 đ"): declared, never cross-checked."""


def normalise_number(number: str) -> str:
    """Canonical form for matching: folded, lower-case, no "số", no spaces."""
    s = fold(unicodedata.normalize("NFC", number))
    s = re.sub(r"\bso\b", "", s)
    return re.sub(r"\s+", "", s)


def cited_numbers(line: str) -> list[str]:
    return [normalise_number(n) for n in DOC_NUMBER.findall(unicodedata.normalize("NFC", line))]


def money_figures(text: str) -> list[int]:
    """Every amount of money written in ``text``, in đồng."""
    text = unicodedata.normalize("NFC", text)
    out = [int(m.group(1).replace(".", "")) for m in RANGE_START.finditer(text)]
    for m in MONEY.finditer(text):
        raw = m.group("num") or m.group("num2")
        mult = (m.group("mult") or m.group("mult2") or "").lower() or None
        # "2.789.000" groups thousands with dots; "2,5" (triệu) is a decimal comma.
        value = float(raw.replace(".", "") if "," not in raw else raw.replace(",", "."))
        amount = round(value * MULTIPLIER[mult])
        if amount >= 1000:  # smaller "amounts" are form codes such as "Mẫu 1đ", never money
            out.append(amount)
    return out


def _date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def load_catalog(path: Path = CATALOG) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return list(data["documents"])


def catalog_index(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for d in docs:
        for n in [d["number"], *(d.get("aliases") or [])]:
            index[normalise_number(str(n))] = d
    return index


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    base = load_knowledge(KNOWLEDGE)
    assert [str(e) for e in base.errors] == []
    return base


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, Any]]:
    return load_catalog()


# --- (a) the catalogue and valid_from -------------------------------------------------------------
def catalog_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen: dict[str, str] = {}
    for d in docs:
        name = str(d.get("number"))
        missing = [f for f in CATALOG_FIELDS if f not in d]
        if missing:
            problems.append(f"{name}: missing {missing}")
        # an imported document whose title or issuer the text did not state waits for an officer
        required = ("number", "type", "status") if d.get("needs_review") else \
            ("number", "type", "title", "issuer", "status")
        for f in required:
            if not d.get(f):
                problems.append(f"{name}: empty {f}")
        if d.get("status") not in STATUSES:
            problems.append(f"{name}: status {d.get('status')!r} not in {sorted(STATUSES)}")
        for f in ("signed", "effective"):
            try:
                value = _date(d.get(f))
            except ValueError:
                problems.append(f"{name}: {f} {d.get(f)!r} is not YYYY-MM-DD")
                continue
            if value is None and not d.get("needs_review"):
                problems.append(f"{name}: {f} is unknown but the entry is not marked needs_review")
        try:
            signed, effective = _date(d.get("signed")), _date(d.get("effective"))
        except ValueError:
            signed = effective = None
        if signed and effective and effective < signed and d.get("type") != "Văn bản hợp nhất":
            problems.append(f"{name}: effective {effective} before signed {signed}")
        for s in d.get("superseded_by") or []:
            if not isinstance(s, dict) or not s.get("number") or _date(s.get("from")) is None:
                problems.append(f"{name}: superseded_by needs {{number, from, scope}}")
        if d.get("status") == "superseded" and not d.get("superseded_by"):
            problems.append(f"{name}: superseded but superseded_by is empty")
        key = normalise_number(name)
        if key in seen:
            problems.append(f"{name}: duplicate of {seen[key]}")
        seen[key] = name
    return problems


def test_catalog_is_well_formed(catalog: list[dict[str, Any]]) -> None:
    assert catalog_problems(catalog) == []


def test_superseding_documents_are_catalogued(catalog: list[dict[str, Any]]) -> None:
    index = catalog_index(catalog)
    missing = [(d["number"], s["number"]) for d in catalog for s in d.get("superseded_by") or []
               if normalise_number(s["number"]) not in index]
    assert missing == []


def basis_problems(entries: list[Entry], index: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for e in entries:
        newest: tuple[dt.date, str] | None = None
        for line in e.legal_basis:
            numbers = cited_numbers(line)
            if not numbers:
                problems.append(f"{e.file}:{e.line} {e.id}: legal basis names no document number: {line!r}")
            for n in numbers:
                doc = index.get(n)
                if doc is None:
                    problems.append(f"{e.file}:{e.line} {e.id}: {n!r} is not in knowledge/documents/catalog.yaml")
                    continue
                effective = _date(doc.get("effective"))
                if effective and (newest is None or effective > newest[0]):
                    newest = (effective, str(doc["number"]))
        if newest and e.valid_from < newest[0]:
            problems.append(f"{e.file}:{e.line} {e.id}: valid_from {e.valid_from} is earlier than "
                            f"{newest[1]} (in effect from {newest[0]})")
    return problems


def test_valid_from_is_not_before_the_newest_legal_basis(kb: KnowledgeBase,
                                                         catalog: list[dict[str, Any]]) -> None:
    assert basis_problems(kb.entries, catalog_index(catalog)) == []


# --- (b) money figures --------------------------------------------------------------------------
def money_problems(entries: list[Entry]) -> list[str]:
    problems = []
    for e in entries:
        stated = set(money_figures(e.answer + "\n" + e.details))
        declared = {a.amount for a in e.amounts}
        for amount in sorted(stated - declared):
            problems.append(f"{e.file}:{e.line} {e.id}: {amount:,} đồng is written but not declared in amounts")
        for amount in sorted(declared - stated):
            problems.append(f"{e.file}:{e.line} {e.id}: amounts declares {amount:,} đồng that the text never states")
    return problems


def test_every_money_figure_is_declared(kb: KnowledgeBase) -> None:
    assert money_problems(kb.entries) == []


def conflicts(claims: list[tuple[str, Amount]]) -> list[str]:
    by_key: dict[tuple[str, str], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for where, a in claims:
        if not a.benefit.startswith(EXAMPLE_PREFIX):
            by_key[(a.benefit, a.since)][a.amount].append(where)
    return [f"{benefit} from {since}: " + "; ".join(f"{amount:,} in {', '.join(ws)}" for amount, ws in found.items())
            for (benefit, since), found in sorted(by_key.items()) if len(found) > 1]


def entry_claims(entries: list[Entry]) -> list[tuple[str, Amount]]:
    return [(f"{e.file}:{e.line} {e.id}", a) for e in entries for a in e.amounts]


def test_one_amount_per_benefit_and_date(kb: KnowledgeBase) -> None:
    assert conflicts(entry_claims(kb.entries)) == []


def figure_periods(path: Path = FIGURES) -> dict[str, list[tuple[dt.date, int]]]:
    """The calculators' shared figures: key -> [(valid_from, amount)], oldest first."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, list[tuple[dt.date, int]]] = {}
    for key, figure in (data.get("figures") or {}).items():
        periods = [(_date(p["valid_from"]), int(p["amount"])) for p in figure.get("periods") or []]
        out[key] = sorted((d, a) for d, a in periods if d is not None)
    return out


def calculator_disagreements(claims: list[tuple[str, Amount]],
                             periods: dict[str, list[tuple[dt.date, int]]]) -> list[str]:
    """An entry's amount must equal the calculators' figure in force on the entry's date."""
    out = []
    for where, a in claims:
        day = dt.date.fromisoformat(a.since)
        in_force = [amount for since, amount in periods.get(a.benefit, []) if since <= day]
        if in_force and in_force[-1] != a.amount:
            out.append(f"{where}: {a.benefit} from {a.since} is {a.amount:,} but the calculators say {in_force[-1]:,}")
    return out


def test_amounts_agree_with_the_calculators(kb: KnowledgeBase) -> None:
    if not FIGURES.exists():
        pytest.skip("knowledge/calculators/_figures.yaml is not in this tree")
    assert calculator_disagreements(entry_claims(kb.entries), figure_periods()) == []


# --- the checks themselves catch what they should -------------------------------------------------
def _entry(text: str, amounts: list[Amount], basis: list[str], valid_from: dt.date, eid: str = "x") -> Entry:
    return Entry(id=eid, kind="qa", topic="t", title="q", answer=text, passages=[], legal_basis=basis,
                 valid_from=valid_from, needs_review=False, file="f.yaml", line=1, amounts=amounts)


def test_money_parser_reads_the_forms_used_in_answers() -> None:
    text = ("2.789.000 đồng; 25.300.000 đ; 3.000 đ/km; 10 triệu đồng; 1,25 triệu/người; 15 tỷ đồng; "
            "60 triệu; từ 01/7/2024; 81%; 12 ngày; đủ 1 đến 2 năm; Mẫu 1đ; 2.000.000 - 2.500.000 đồng/tháng")
    assert sorted(money_figures(text)) == sorted([2789000, 25300000, 3000, 10000000, 1250000, 15000000000,
                                                  60000000, 2000000, 2500000])


def test_the_checks_are_not_vacuous() -> None:
    index = catalog_index([{"number": "77/2024/NĐ-CP", "effective": dt.date(2024, 7, 1)}])
    early = _entry("Mức chuẩn 2.789.000 đ từ 01/7/2024.", [], ["Nghị định số 77/2024/NĐ-CP"], dt.date(2021, 9, 15))
    assert len(basis_problems([early], index)) == 1
    unknown = _entry("x", [], ["Nghị định 999/2030/NĐ-CP"], dt.date(2031, 1, 1))
    assert "not in knowledge/documents/catalog.yaml" in basis_problems([unknown], index)[0]
    assert len(money_problems([early])) == 1  # 2.789.000 written, not declared
    a1, a2 = Amount("ncc.muc_chuan", 2789000, "2024-07-01"), Amount("ncc.muc_chuan", 2790000, "2024-07-01")
    assert len(conflicts([("e1", a1), ("e2", a2)])) == 1
    assert conflicts([("e1", Amount("vi_du.x", 1, "2024-07-01")), ("e2", Amount("vi_du.x", 2, "2024-07-01"))]) == []
    periods = {"ncc.muc_chuan": [(dt.date(2023, 7, 1), 2055000), (dt.date(2024, 7, 1), 2789000)]}
    assert calculator_disagreements([("e", Amount("ncc.muc_chuan", 2055000, "2024-09-01"))], periods)
    assert calculator_disagreements([("e", a1)], periods) == []
    assert catalog_problems([{"number": "1/2020/NĐ-CP", "type": "Nghị định", "title": "t", "issuer": "i",
                              "signed": None, "effective": "2020-13-01", "status": "valid"}])


def test_bad_amounts_are_reported_with_file_and_line(tmp_path: Path) -> None:
    kdir = tmp_path / "knowledge"
    (kdir / "qa").mkdir(parents=True)
    (kdir / "procedures").mkdir()
    (kdir / "topics.yaml").write_text("topics:\n  - id: t\n    title: T\n", encoding="utf-8")
    (kdir / "qa" / "t.yaml").write_text(
        "- id: t-a\n  topic: t\n  question: q\n  answer: a\n  legal_basis: [x]\n  valid_from: 2024-07-01\n"
        "  amounts:\n    - {benefit: ncc.muc_chuan, amount: 2.789, from: 2024-07-01}\n"
        "- id: t-b\n  topic: t\n  question: q\n  answer: a\n  legal_basis: [x]\n  valid_from: 2024-07-01\n"
        "  amounts:\n    - {benefit: Bad Key, amount: 1, from: 2024-07-01}\n"
        "- id: t-c\n  topic: t\n  question: q\n  answer: a\n  legal_basis: [x]\n  valid_from: 2024-07-01\n"
        "  amounts:\n    - {benefit: ok.key, amount: 1, from: 2024-13-01}\n",
        encoding="utf-8")
    errors = [str(e) for e in load_knowledge(kdir).errors]
    assert len(errors) == 3
    assert errors[0].startswith("knowledge/qa/t.yaml:7: ") and "whole number" in errors[0]
    assert errors[1].startswith("knowledge/qa/t.yaml:15: ") and "bad benefit key" in errors[1]
    assert errors[2].startswith("knowledge/qa/t.yaml:23: ") and "bad date" in errors[2]
