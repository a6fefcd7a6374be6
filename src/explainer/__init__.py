"""explainer: turn a slow PostgreSQL database into a short, verified list of fixes."""

__version__ = "0.1.0"
