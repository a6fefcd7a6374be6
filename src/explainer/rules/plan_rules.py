"""Rules registered from this module (filled in by issue 4)."""

from __future__ import annotations

from explainer.rules.model import Rule

RULES: tuple[Rule, ...] = ()
