"""The calculators as loaded from ``knowledge/calculators/*.yaml`` (see docs/calculators.md).

Plain frozen data: the loader (``loader.py``) builds and validates it, the engine (``engine.py``) computes
with it, the recogniser (``recognise.py``) reads its keywords and inputs. Phrases are stored folded and
split into words (``("thuong", "binh")``) so that matching is a tuple comparison.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

Phrase = tuple[str, ...]

INPUT_TYPES = ("months", "money", "percent", "age", "region", "count", "flag", "choice")
KINDS = ("unemployment", "rate_table", "rules", "figure")
REGIONS = ("I", "II", "III", "IV")


class _Dated(Protocol):
    @property
    def valid_from(self) -> dt.date: ...


_D = TypeVar("_D", bound=_Dated)


def in_force(periods: tuple[_D, ...], on: dt.date) -> _D | None:
    """Of periods sorted oldest first, the one in force on ``on``: the latest starting on or before it."""
    current = None
    for p in periods:
        if p.valid_from <= on:
            current = p
    return current


@dataclass(frozen=True)
class FigurePeriod:
    valid_from: dt.date
    amount: int
    legal_basis: str
    needs_review: bool = False
    review_note: str = ""
    line: int = 0


@dataclass(frozen=True)
class Figure:
    """A shared amount (mức chuẩn, lương cơ sở, lương tối thiểu vùng...) with its periods, oldest first."""

    key: str
    title: str
    unit: str
    periods: tuple[FigurePeriod, ...]
    file: str = ""
    line: int = 0

    def at(self, on: dt.date) -> FigurePeriod | None:
        """The period in force on ``on`` (the latest that starts on or before it)."""
        return in_force(self.periods, on)


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    detect: tuple[tuple[Phrase, ...], ...] = ()
    """Alternatives; each is a set of phrases that must all occur ("hộ nghèo + một mình")."""
    ages: tuple[int, int] | None = None
    """For a choice derived from an age ("dưới 4 tuổi": 0-3)."""
    button: bool = True


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    label: str
    ask: str = ""
    optional: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[Choice, ...] = ()
    default: str | None = None
    after: tuple[Phrase, ...] = ()
    """percent: a bare number right after one of these phrases is the rate ("thương binh 61")."""
    count_of: tuple[Phrase, ...] = ()
    """count: the noun counted ("2 người con là liệt sĩ")."""
    detect: tuple[tuple[str, tuple[Phrase, ...]], ...] = ()
    """count/flag: phrases that imply a value (("1", (("vo", "liet", "si"),)),)."""
    buttons: tuple[str, ...] = ()
    """percent: ranges offered as buttons ("41-50")."""
    invalid: str = ""
    line: int = 0

    def choice(self, value: str) -> Choice | None:
        for c in self.choices:
            if c.value == value:
                return c
        return None

    @property
    def derived_from_age(self) -> bool:
        return any(c.ages for c in self.choices)


@dataclass(frozen=True)
class Period:
    """One period of a calculator: from ``valid_from``, with its legal basis and its own data."""

    valid_from: dt.date
    legal_basis: tuple[str, ...]
    needs_review: bool = False
    review_note: str = ""
    document: str = ""
    amounts: dict[str, int] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    """Kind-specific data of the period (unemployment parameters, rate tables, rules...)."""
    line: int = 0


@dataclass(frozen=True)
class Condition:
    """``when`` of a rule or note: input name -> accepted values; see ``matches``."""

    tests: tuple[tuple[str, Any], ...] = ()

    def matches(self, inputs: dict[str, Any]) -> bool:
        for name, want in self.tests:
            have = inputs.get(name)
            if not _accepts(want, have):
                return False
        return True


def _accepts(want: Any, have: Any) -> bool:
    if want is None:
        return have is None
    if have is None:
        return False
    if isinstance(want, list):
        return any(_accepts(w, have) for w in want)
    if isinstance(want, bool) or isinstance(have, bool):
        return want == have
    if isinstance(want, str) and want[:1] in "<>" and isinstance(have, int | float):
        op, num = (want[:2], want[2:]) if want[1:2] == "=" else (want[:1], want[1:])
        bound = float(num)
        return {"<": have < bound, "<=": have <= bound, ">": have > bound, ">=": have >= bound}[op]
    if isinstance(want, str) and isinstance(have, int | float) and "-" in want.strip("-"):
        lo, hi = want.split("-", 1)
        return float(lo) <= have <= float(hi)
    return str(want) == str(have)


@dataclass(frozen=True)
class Component:
    """One part of a rules result: an amount of the period, a figure, or coefficient x figure."""

    label: str
    amount: str | None = None
    figure: str | None = None
    coefficient: float | None = None
    per: str | None = None


@dataclass(frozen=True)
class Rule:
    when: Condition
    add: Component | None = None
    not_eligible: str = ""
    stop: bool = False
    line: int = 0


@dataclass(frozen=True)
class Note:
    text: str
    when: Condition = Condition()


@dataclass(frozen=True)
class Boost:
    input: str
    when: Any
    weight: float


@dataclass(frozen=True)
class Calculator:
    id: str
    kind: str
    topic: str
    title: str
    summary: str
    keywords: tuple[tuple[Phrase, float], ...]
    inputs: tuple[InputSpec, ...]
    periods: tuple[Period, ...]
    """Oldest first. Empty for ``figure`` calculators (their periods are the figures')."""
    notes: tuple[Note, ...] = ()
    rules: tuple[Rule, ...] = ()
    boosts: tuple[Boost, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    """Kind-specific settings that do not change with the period (thresholds, tables names...)."""
    file: str = ""
    line: int = 0

    def input(self, name: str) -> InputSpec | None:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        return None

    def period_at(self, on: dt.date) -> Period | None:
        return in_force(self.periods, on)
