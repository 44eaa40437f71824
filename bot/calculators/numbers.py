"""Numbers in citizens' words: amounts of money, months, percentages, ages, regions, counts.

Everything works on the *normalised* text: folded (no diacritics, lower case, đ -> d, via
``indexer.diacritics.fold``), chat abbreviations expanded (``knowledge/abbreviations.yaml``), number words
before a unit turned into digits ("tám triệu" -> "8 trieu"), and split into space-separated tokens, so
"8tr5" becomes "8 tr 5" and "61%" becomes "61 %".

Forms understood (with or without diacritics):
- money: 8.000.000 / 8,000,000 / 8000000 đ, 8 triệu, 8tr, 8 củ, 8,5 triệu, 8tr5, 8 triệu 5, 8 triệu rưỡi,
  8 triệu 250 (nghìn), 500k, 500 nghìn; a bare number after "lương" up to 300 is read as millions
  ("lương 8" -> 8.000.000 đ) and the reply says so;
- months: 50 tháng, 4 năm, 4 năm 2 tháng, 3 năm rưỡi; "6 tháng cuối", "quá 3 tháng", "nghỉ được 1 tháng"
  are not months of contribution;
- percentages: 61%, 61 %, 61 phần trăm, "tỷ lệ 61", "thương binh 61" (but not the class "4/4");
- ages: 82 tuổi; counts before a noun ("2 người con là liệt sĩ", "nuôi 2 con"); regions: vùng 1 / vùng I.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from indexer.diacritics import fold

__all__ = [
    "Found", "normalize", "money", "months", "percents", "ages", "region", "counts", "bare_number",
    "format_money", "format_number", "format_coefficient", "format_date", "contains",
]

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*k(?![a-z])|(?<![\w.,])-\d+(?:[.,]\d+)*|\d+(?:[.,]\d+)*|[a-z]+|[%/?!.;:,()+*x-]")
_NUMBER_WORDS = {
    "mot": 1, "hai": 2, "ba": 3, "bon": 4, "nam": 5, "sau": 6, "bay": 7, "tam": 8, "chin": 9, "muoi": 10,
}
# Only inside a number ("hai mươi lăm", "mười mốt"): alone they are other words (làm, từ...).
_NUMBER_TAILS = {**_NUMBER_WORDS, "lam": 5, "mot": 1, "tu": 4}
# Units after which a number word is a number ("năm tháng", "hai con", "tám triệu").
_UNIT_AFTER_WORD = frozenset({
    "trieu", "tr", "thang", "nam", "tuoi", "liet", "con", "nguoi", "dua", "nghin", "ngan", "phan",
})
_SENTENCE_END = frozenset({".", "?", "!", ";"})


@dataclass(frozen=True)
class Found:
    """A number found in the normalised text: value and token span [start, end)."""

    value: int
    start: int
    end: int
    note: str = ""


def normalize(text: str, abbreviations: Mapping[str, str] | None = None) -> list[str]:
    """Tokens of the folded text, abbreviations expanded, number words before a unit as digits."""
    folded = fold(text)
    folded = re.sub(r"(\d)\s*k\b", r"\1k", folded)  # "500 k" stays one amount
    raw = _TOKEN.findall(folded)
    tokens: list[str] = []
    for tok in raw:
        if abbreviations and tok.isalpha() and tok in abbreviations:
            tokens.extend(fold(abbreviations[tok]).split())
        else:
            tokens.append(tok)
    return _number_words(tokens)


def _number_words(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok in _NUMBER_WORDS:
            # Read "mười hai", "hai mươi", "hai mươi lăm", "mười" as one number.
            j = i
            value = 0
            if tokens[j] == "muoi":
                value = 10
                j += 1
                if j < n and tokens[j] in _NUMBER_TAILS and tokens[j] != "muoi":
                    value += _NUMBER_TAILS[tokens[j]]
                    j += 1
            else:
                value = _NUMBER_WORDS[tokens[j]]
                j += 1
                if j < n and tokens[j] == "muoi":
                    value *= 10
                    j += 1
                    if j < n and tokens[j] in _NUMBER_TAILS and tokens[j] != "muoi":
                        value += _NUMBER_TAILS[tokens[j]]
                        j += 1
            if j < n and tokens[j] in _UNIT_AFTER_WORD:
                out.append(str(value))
                i = j
                continue
        out.append(tok)
        i += 1
    return out


def contains(tokens: list[str], phrase: tuple[str, ...], start: int = 0, end: int | None = None) -> int:
    """Index of the first occurrence of ``phrase`` (a token tuple) in tokens[start:end], or -1."""
    end = len(tokens) if end is None else end
    m = len(phrase)
    if m == 0:
        return -1
    first, last = phrase[0], end - m
    i = start
    while i <= last:
        try:  # list.index scans in C: this runs hundreds of times per question (calculator keywords)
            i = tokens.index(first, i, last + 1)
        except ValueError:
            return -1
        if m == 1 or tuple(tokens[i:i + m]) == phrase:
            return i
        i += 1
    return -1


def _is_int(tok: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", tok))


def _num(tok: str) -> float | None:
    """Value of a number token: 8.000.000 / 8,000,000 (thousands) or 8,5 / 8.5 (decimal)."""
    if not re.fullmatch(r"-?\d+(?:[.,]\d+)*", tok):
        return None
    neg = tok.startswith("-")
    body = tok.lstrip("-")
    parts = re.split(r"[.,]", body)
    if len(parts) == 1:
        value = float(parts[0])
    elif all(len(p) == 3 for p in parts[1:]):
        value = float("".join(parts))
    elif len(parts) == 2:
        value = float(f"{parts[0]}.{parts[1]}")
    else:
        return None
    return -value if neg else value


_MILLION = {"trieu", "tr", "cu", "m"}
_THOUSAND = {"nghin", "ngan", "k"}
_DONG = {"d", "dong", "vnd", "vn"}


def money(tokens: list[str]) -> list[Found]:
    """Amounts of money in the tokens (in đồng), left to right."""
    found: list[Found] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if tok.endswith("k") and _num(tok[:-1]) is not None:  # 500k
            value = _num(tok[:-1])
            assert value is not None
            found.append(Found(round(value * 1000), i, i + 1))
            i += 1
            continue
        value = _num(tok)
        if value is None:
            i += 1
            continue
        nxt = tokens[i + 1] if i + 1 < n else ""
        if nxt in _MILLION:
            amount = value * 1_000_000
            j = i + 2
            # "8 triệu rưỡi", "8tr5", "8 triệu 2", "8 triệu 250 (nghìn)"
            if j < n and tokens[j] == "ruoi":
                amount += 500_000
                j += 1
            elif j < n and _is_int(tokens[j]) and not tokens[j].startswith("-") and (
                    j + 1 >= n or tokens[j + 1] not in _MILLION | {"thang", "nam", "tuoi", "%", "/"}):
                rest = int(tokens[j])
                if j + 1 < n and tokens[j + 1] in _THOUSAND:
                    amount += rest * 1000
                    j += 1
                elif rest < 10:
                    amount += rest * 100_000
                elif rest < 100:
                    amount += rest * 10_000
                elif rest < 1000:
                    amount += rest * 1000
                j += 1
            if j < n and tokens[j] in _DONG:
                j += 1
            found.append(Found(round(amount), i, j))
            i = j
            continue
        if nxt in _THOUSAND:
            j = i + 2
            if j < n and tokens[j] in _DONG:
                j += 1
            found.append(Found(round(value * 1000), i, j))
            i = j
            continue
        if nxt in _DONG and not (nxt == "dong" and i + 2 < n and tokens[i + 2] in _VERB_DONG_NEXT):
            found.append(Found(round(value), i, i + 2))
            i += 2
            continue
        if value >= 100_000 and value == int(value):  # 8.000.000 without a unit
            found.append(Found(round(value), i, i + 1))
        i += 1
    return found


def bare_number(tokens: list[str]) -> int | None:
    """The single plain integer of a short answer ("50", "-3", "61 %"), else None."""
    nums = [t for t in tokens if _num(t) is not None]
    if len(nums) != 1:
        return None
    value = _num(nums[0])
    if value is None or value != int(value):
        return None
    return int(value)


_CONTRIBUTION = frozenset({"dong", "tham", "bhtn", "hiem", "bh"})
_NOT_CONTRIBUTION = frozenset({
    "nghi", "qua", "trong", "sau", "het", "con", "huong", "lanh", "nhan", "cho", "doi", "cach", "truoc",
    "thu", "vong",
})
# After the duration: "6 tháng cuối / gần nhất / liền kề / trước khi nghỉ / sau" (not a contribution time).
_AFTER_NOT_CONTRIBUTION = (("cuoi",), ("gan",), ("lien", "ke"), ("truoc",), ("sau",))
# After "N đồng": the verb "đóng" (folded alike), not the currency: "lương 8 đóng bảo hiểm".
_VERB_DONG_NEXT = frozenset({"bao", "bh", "that", "bhxh", "duoc", "tu", "theo", "tren"})


def months(tokens: list[str]) -> list[Found]:
    """Durations of contribution in months, best first ("50 tháng", "4 năm 2 tháng", "3 năm rưỡi").

    A duration followed by "cuối/gần nhất/liền kề/trước" or preceded (nearest cue word) by
    "nghỉ/quá/trong/sau/hưởng/lãnh" is not a contribution time and is left out. Durations right after
    "đóng/tham gia/bảo hiểm/BHTN" rank first.
    """
    ranked: list[tuple[int, Found]] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        if not _is_int(tok) or i + 1 >= n:
            i += 1
            continue
        value = int(tok)
        unit = tokens[i + 1]
        j = i + 2
        if unit == "thang":
            total = value
        elif unit == "nam":
            total = value * 12
            if j < n and tokens[j] == "ruoi":
                total += 6
                j += 1
            elif j + 1 < n and _is_int(tokens[j]) and tokens[j + 1] == "thang":
                total += int(tokens[j])
                j += 2
        else:
            i += 1
            continue
        after = tuple(tokens[j:j + 2])
        if any(after[:len(x)] == x for x in _AFTER_NOT_CONTRIBUTION) or (unit == "nam" and value >= 1900):
            i = j
            continue
        score = 1
        for k in range(i - 1, max(-1, i - 9), -1):
            w = tokens[k]
            if w in _SENTENCE_END or _num(w) is not None:
                break
            if w in _CONTRIBUTION:
                score = 2
                break
            if w in _NOT_CONTRIBUTION:
                score = 0
                break
        if score == 2 or (score == 1 and not (unit == "thang" and value == 1)):  # "bao nhiêu 1 tháng"
            ranked.append((score, Found(total, i, j)))
        i = j
    ranked.sort(key=lambda sf: -sf[0])
    return [f for _, f in ranked]


def percents(tokens: list[str], after: Iterable[tuple[str, ...]] = ()) -> list[Found]:
    """Percentages: "61 %", "61 phan tram", or a bare number right after one of the ``after`` phrases
    ("ty le 61", "thuong binh 61"). A number followed by "/" (the class "4/4") is not a rate."""
    found: list[Found] = []
    n = len(tokens)
    marked: set[int] = set()
    for i, tok in enumerate(tokens):
        if not _is_int(tok):
            continue
        nxt = tokens[i + 1] if i + 1 < n else ""
        if nxt == "%" or (nxt == "phan" and i + 2 < n and tokens[i + 2] == "tram"):
            found.append(Found(int(tok), i, i + 2))
            marked.add(i)
    phrases = list(after)
    for i, tok in enumerate(tokens):
        if i in marked or not _is_int(tok):
            continue
        nxt = tokens[i + 1] if i + 1 < n else ""
        if nxt in {"/", "tuoi", "thang", "nam", "trieu", "tr", "nguoi", "con", "lan", "ngay"}:
            continue
        for phrase in phrases:
            m = len(phrase)
            for gap in (0, 1):  # "ty le 61", "ty le la 61"
                start = i - gap - m
                if start >= 0 and tuple(tokens[start:start + m]) == phrase:
                    found.append(Found(int(tok), i, i + 1))
                    break
            else:
                continue
            break
    found.sort(key=lambda f: f.start)
    return found


def ages(tokens: list[str], today: dt.date | None = None) -> list[Found]:
    """Ages: "82 tuổi"; "sinh năm 1944" (counted from ``today``'s year)."""
    found: list[Found] = []
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if _is_int(tok) and i + 1 < n and tokens[i + 1] == "tuoi":
            found.append(Found(int(tok), i, i + 2))
        elif (today is not None and _is_int(tok) and len(tok) == 4 and i >= 2
              and tokens[i - 2:i] == ["sinh", "nam"] and 1900 <= int(tok) <= today.year):
            found.append(Found(today.year - int(tok), i - 2, i + 1, note=f"tính theo năm sinh {tok}"))
    return found


_ROMAN = {"i": "I", "ii": "II", "iii": "III", "iv": "IV", "1": "I", "2": "II", "3": "III", "4": "IV"}


def region(tokens: list[str]) -> Found | None:
    """The minimum-wage region: "vùng 1", "vung II". Returns value 1..4."""
    for i, tok in enumerate(tokens[:-1]):
        if tok == "vung" and tokens[i + 1] in _ROMAN:
            return Found(("I", "II", "III", "IV").index(_ROMAN[tokens[i + 1]]) + 1, i, i + 2)
    return None


def region_name(value: str) -> str | None:
    """Normalise an answer such as "2", "ii", "vung 2" to "II"."""
    toks = value.split()
    if toks and toks[0] == "vung":
        toks = toks[1:]
    if len(toks) == 1 and toks[0] in _ROMAN:
        return _ROMAN[toks[0]]
    return None


def counts(tokens: list[str], nouns: Iterable[tuple[str, ...]], gap: int = 4) -> list[Found]:
    """Numbers counting a noun: "2 người con là liệt sĩ", "nuôi 2 con" (up to ``gap`` words between)."""
    found: list[Found] = []
    nouns = list(nouns)
    n = len(tokens)
    for i, tok in enumerate(tokens):
        if not _is_int(tok):
            continue
        for k in range(i + 1, min(n, i + 2 + gap)):
            w = tokens[k]
            if _num(w) is not None or w in _SENTENCE_END or w == ",":
                break
            if any(tuple(tokens[k:k + len(p)]) == p for p in nouns):
                found.append(Found(int(tok), i, k))
                break
    return found


# --- formatting ------------------------------------------------------------------------------------
def format_number(value: int | float) -> str:
    """8000000 -> "8.000.000" (Vietnamese thousands separator)."""
    return f"{int(round(value)):,}".replace(",", ".")


def format_money(value: int | float) -> str:
    return f"{format_number(value)} đ"


def format_coefficient(value: float) -> str:
    """1.5 -> "1,5"; 2.0 -> "2,0"."""
    text = f"{value:.2f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return text.replace(".", ",")


def format_date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")
