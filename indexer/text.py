"""The Vietnamese text pipeline shared by indexing and querying.

    raw text
      -> NFC, lower-case, whitespace folded                       (normalise)
      -> chat spellings and abbreviations expanded (ko, dc, bhxh) (abbreviations.yaml)
      -> diacritics restored when the citizen typed without them, (DiacriticRestorer)
         unknown syllables corrected from their context (thươg -> thương)
      -> underthesea text_normalize (tone-mark placement: hoà -> hòa)
      -> dense text (plain words, never underscores, for e5)
      -> word tokens (underthesea word_tokenize, stop-words removed) for BM25
      -> folded syllables (đ->d, marks dropped) for the safety-net BM25

The segmenter is an interface so that tests can run with a fake one.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from indexer import yamlio
from indexer.diacritics import DiacriticRestorer, fold, has_diacritics

_WS = re.compile(r"\s+")
# Keep letters, digits and the characters that occur inside receipt numbers and dates.
_PUNCT = re.compile(r"[^\w\s./\-]", re.UNICODE)
_TOKEN = re.compile(r"\w+", re.UNICODE)


# underthesea's __init__ imports these eagerly; they pull torch and transformers (seconds and ~230 MB
# per process) for features this product never uses (they download models).
_UNDERTHESEA_UNUSED = ("underthesea.pipeline.classification", "underthesea.pipeline.sentiment",
                       "underthesea.pipeline.lang_detect", "underthesea.pipeline.dependency_parse",
                       "underthesea.pipeline.translate", "underthesea.agent", "underthesea.address")


def underthesea() -> Any:
    """The underthesea package without its unused optional pipelines (they then import as None)."""
    if "underthesea" not in sys.modules:
        for name in _UNDERTHESEA_UNUSED:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    import underthesea as ut

    return ut


class Segmenter(Protocol):
    """Splits Vietnamese text into words (a word may be several syllables)."""

    def segment(self, text: str) -> list[str]: ...


class UndertheseaSegmenter:
    """Word segmentation with underthesea's CRF ``word_tokenize`` (offline)."""

    def __init__(self) -> None:
        self._tokenize = None

    def warm_up(self) -> None:
        if self._tokenize is None:
            self._tokenize = underthesea().word_tokenize

    def segment(self, text: str) -> list[str]:
        self.warm_up()
        assert self._tokenize is not None
        return [w for w in self._tokenize(text) if _TOKEN.search(w)]


class SyllableSegmenter:
    """Fake segmenter for tests: every syllable is a word."""

    def segment(self, text: str) -> list[str]:
        return _TOKEN.findall(text)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def tone_normalize(text: str) -> str:
    """Modern tone-mark placement (hoà -> hòa, thuỷ -> thủy) via underthesea, if available."""
    try:
        text_normalize = underthesea().text_normalize
    except Exception:  # pragma: no cover - underthesea is a dependency
        return text
    out: str = text_normalize(text)
    # text_normalize pads punctuation with spaces; fold them back.
    return _WS.sub(" ", out).strip()


def load_abbreviations(path: Path) -> dict[str, str]:
    """Read ``abbreviations.yaml``: {short form: full words}. Keys are matched folded and lower-cased."""
    if not path.exists():
        return {}
    data = yamlio.safe_load(path.read_text(encoding="utf-8")) or {}
    table: dict[str, str] = {}
    for key, value in (data.get("abbreviations") or {}).items():
        table[fold(str(key))] = nfc(str(value)).lower()
    return table


def load_stopwords(path: Path) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            words.add(nfc(line).lower().replace(" ", "_"))
    return frozenset(words)


@dataclass(frozen=True)
class Processed:
    original: str
    normalized: str
    """NFC, lower-case, abbreviations expanded (before diacritic restoration)."""
    restored: str
    """``normalized`` with diacritics restored and tone marks placed: what the model sees."""
    words: list[str]
    """Segmented words joined with underscores, stop-words removed (lexical side)."""
    folded: list[str]
    """Accent-folded syllables of ``restored``, plus folded syllable bigrams (safety net)."""
    was_unaccented: bool

    def dense_text(self, segmented: bool = False) -> str:
        return " ".join(self.words) if segmented else self.restored


class TextPipeline:
    """Normalises, restores and tokenises text. Heavy parts load in ``warm_up()``."""

    def __init__(
        self,
        abbreviations: dict[str, str] | None = None,
        stopwords: Iterable[str] = (),
        restorer: DiacriticRestorer | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.abbreviations = abbreviations or {}
        self.stopwords = frozenset(stopwords)
        self.restorer = restorer
        self.segmenter: Segmenter = segmenter or UndertheseaSegmenter()

    @classmethod
    def from_knowledge(
        cls, knowledge_dir: Path, restorer: DiacriticRestorer | None = None, segmenter: Segmenter | None = None
    ) -> TextPipeline:
        return cls(
            abbreviations=load_abbreviations(knowledge_dir / "abbreviations.yaml"),
            stopwords=load_stopwords(knowledge_dir / "stopwords.txt"),
            restorer=restorer,
            segmenter=segmenter,
        )

    def warm_up(self) -> None:
        warm = getattr(self.segmenter, "warm_up", None)
        if warm:
            warm()
        if self.restorer is not None:
            self.restorer.warm_up()

    # --- steps -------------------------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        text = nfc(text).lower()
        text = text.replace("\u00a0", " ")
        text = _PUNCT.sub(" ", text)
        text = _WS.sub(" ", text).strip()
        return self.expand(text)

    def expand(self, text: str) -> str:
        """Expand chat spellings and abbreviations word by word (ko -> không, bhxh -> bảo hiểm xã hội)."""
        if not self.abbreviations:
            return text
        out = []
        for tok in text.split(" "):
            # Typed with diacritics (đc) or without (dc), an abbreviation maps the same way.
            out.append(self.abbreviations.get(fold(tok), tok))
        return " ".join(out)

    def restore(self, text: str) -> str:
        """Diacritics restored on the words typed without them, and unknown syllables corrected when a
        known one at one letter's edit fits the context ("thươg binh" -> "thương binh")."""
        if self.restorer is not None and text:
            text = self.restorer.restore(text)
        return tone_normalize(text) if text else text

    def words(self, text: str) -> list[str]:
        toks = [w.lower().replace(" ", "_") for w in self.segmenter.segment(text)]
        return [t for t in toks if t not in self.stopwords]

    def folded(self, text: str) -> list[str]:
        syl = [s for s in _TOKEN.findall(fold(text))]
        return syl + [f"{a}_{b}" for a, b in zip(syl, syl[1:], strict=False)]

    def process(self, text: str) -> Processed:
        normalized = self.normalize(text)
        # Judged on what the citizen typed, before abbreviations (dc -> được) add diacritics.
        letters = [w for w in _TOKEN.findall(nfc(text).lower()) if w.isalpha()]
        unaccented = bool(letters) and not any(has_diacritics(w) for w in letters)
        restored = self.restore(normalized)
        return Processed(
            original=text,
            normalized=normalized,
            restored=restored,
            words=self.words(restored),
            folded=self.folded(restored) if restored else [],
            was_unaccented=unaccented,
        )

    def process_passage(self, text: str) -> Processed:
        """Knowledge text is written with diacritics: no restoration, only normalisation."""
        normalized = tone_normalize(_WS.sub(" ", _PUNCT.sub(" ", nfc(text).lower())).strip())
        return Processed(
            original=text,
            normalized=normalized,
            restored=normalized,
            words=self.words(normalized),
            folded=self.folded(normalized),
            was_unaccented=False,
        )
