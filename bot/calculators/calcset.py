"""``CalculatorSet``: the calculators of ``knowledge/calculators`` behind one small API.

    calcs = CalculatorSet.load(knowledge_dir / "calculators")
    calcs.warm_up()
    detection = calcs.detect(text, state)          # None: not an amount question (nor an answer)
    if detection:
        outcome = calcs.respond(detection, state)  # result, ONE follow-up question, or bad-input message
        reply(outcome.text, outcome.buttons); keep(outcome.state)

Pure and channel-agnostic: no database, no network; the date (which period applies) is ``today()``
unless given, so tests inject it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.calculators.engine import Engine
from bot.calculators.loader import Loaded, load_calculators
from bot.calculators.numbers import format_date, format_money
from bot.calculators.recognise import PAYLOAD_PREFIX, Detection, Recogniser
from bot.calculators.reply import CalcOutcome, step
from bot.calculators.spec import Calculator, Figure, FigurePeriod
from indexer.knowledge import KnowledgeError

__all__ = ["CalculatorSet", "CalculatorConfigError", "ReviewItem"]


class CalculatorConfigError(Exception):
    """The calculator files have errors (each one ``file:line: message``)."""

    def __init__(self, errors: list[KnowledgeError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass(frozen=True)
class ReviewItem:
    """A figure or rule marked needs_review: what, from when, where, why (for the console)."""

    what: str
    valid_from: dt.date
    file: str
    line: int
    note: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what} (từ {format_date(self.valid_from)}): {self.note}"


class CalculatorSet:
    def __init__(self, loaded: Loaded, abbreviations: Mapping[str, str] | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        if loaded.errors:
            raise CalculatorConfigError(loaded.errors)
        self.loaded = loaded
        self.today = today
        self.engine = Engine(loaded.figures)
        self._abbreviations = abbreviations
        self._recogniser: Recogniser | None = None

    @classmethod
    def load(cls, directory: Path, abbreviations_path: Path | None = None,
             today: Callable[[], dt.date] = dt.date.today, topics: set[str] | None = None) -> CalculatorSet:
        """Load and validate ``directory``; raise ``CalculatorConfigError`` listing every problem.

        Chat abbreviations come from ``abbreviations_path`` (default: ``<directory>/../abbreviations.yaml``)."""
        from indexer.text import load_abbreviations

        directory = Path(directory)
        path = abbreviations_path or directory.parent / "abbreviations.yaml"
        return cls(load_calculators(directory, topics), load_abbreviations(path), today)

    def warm_up(self) -> None:
        if self._recogniser is None:
            self._recogniser = Recogniser(self.loaded, self._abbreviations)

    # --- the dialogue API ---------------------------------------------------------------------------
    def detect(self, text: str, state: dict[str, Any] | None = None) -> Detection | None:
        """An amount question, the answer to the pending follow-up in ``state``, or a ``calc:`` payload."""
        self.warm_up()
        assert self._recogniser is not None
        return self._recogniser.detect(text, state, self.today())

    def respond(self, detection: Detection, state: dict[str, Any] | None = None,
                on: dt.date | None = None) -> CalcOutcome:
        """The result, one follow-up question, or a message for bad input; with the new state."""
        calc = self.loaded.calculators[detection.calculator]
        return step(self.engine, calc, detection, state, on or self.today())

    def compute(self, calc_id: str, inputs: dict[str, Any], on: dt.date | None = None) -> CalcOutcome:
        """Direct use (console, tests): the outcome for these inputs, as if read from a question."""
        calc = self.loaded.calculators[calc_id]
        return step(self.engine, calc, Detection(calc.id, calc.topic, dict(inputs)), None, on or self.today())

    @staticmethod
    def is_payload(text: str | None) -> bool:
        """True for a button payload of a calculator follow-up (``calc:...``)."""
        return bool(text) and str(text).startswith(PAYLOAD_PREFIX)

    @staticmethod
    def is_pending(state: dict[str, Any] | None) -> bool:
        """True when ``state`` is a calculator waiting for an answer."""
        return isinstance(state, dict) and bool(state.get("calc")) and bool(state.get("ask"))

    # --- data for the console and the knowledge checks -------------------------------------------------
    @property
    def calculators(self) -> list[Calculator]:
        return list(self.loaded.calculators.values())

    @property
    def figures(self) -> dict[str, Figure]:
        return dict(self.loaded.figures)

    def figure(self, key: str, on: dt.date | None = None) -> FigurePeriod | None:
        """The value of a shared figure (``ncc.muc_chuan``, ``luong_toi_thieu_vung.I``...) on a date."""
        fig = self.loaded.figures.get(key)
        return None if fig is None else fig.at(on or self.today())

    def review_items(self) -> list[ReviewItem]:
        """Every figure and calculator period marked needs_review (for the console's review list)."""
        items = []
        for fig in self.loaded.figures.values():
            for p in fig.periods:
                if p.needs_review:
                    items.append(ReviewItem(f"{fig.title}: {format_money(p.amount)}", p.valid_from, fig.file,
                                            p.line, p.review_note))
        for calc in self.loaded.calculators.values():
            for per in calc.periods:
                if per.needs_review:
                    items.append(ReviewItem(calc.title, per.valid_from, calc.file, per.line, per.review_note))
        return items
