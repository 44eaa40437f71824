"""Calculators: work out the citizen's own amount (unemployment benefit, people with merit, social
assistance, wages) from ``knowledge/calculators/*.yaml``, with the steps and the legal basis.

See docs/calculators.md. Public API: ``CalculatorSet`` (load, warm_up, detect, respond, compute),
``Detection``, ``CalcOutcome``.
"""

from bot.calculators.calcset import CalculatorConfigError, CalculatorSet, ReviewItem
from bot.calculators.recognise import Detection
from bot.calculators.reply import CalcOutcome

__all__ = ["CalculatorSet", "CalculatorConfigError", "ReviewItem", "Detection", "CalcOutcome"]
