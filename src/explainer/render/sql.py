"""Raw SQL for a suggestion, as it should run in production.

``CONCURRENTLY`` so the build does not block writes, ``IF NOT EXISTS`` so the script can
be re-run. (CONCURRENTLY cannot run inside a transaction block: run it on its own.)
"""

from __future__ import annotations

from explainer.advise.ddl import create_index_sql
from explainer.advise.model import IndexCandidate


def index_sql(candidate: IndexCandidate) -> str:
    return create_index_sql(candidate, concurrently=True, if_not_exists=True) + ";"
