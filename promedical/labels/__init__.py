"""Expert labels: physician annotations from public data turned into verdict records, for judge meta-evaluation.

``import_kqa_nli`` reads K-QA's physician NLI annotations; ``promedical.labels.agreement`` measures how far the
annotators agree with one another (the ceiling a judge can be expected to reach).
"""

from __future__ import annotations

from promedical.labels.kqa_nli import ANNOTATOR_JUDGE, MAJORITY_JUDGE, LabelImport, import_kqa_nli
from promedical.labels.matching import CLAIM_THRESHOLD, QUESTION_THRESHOLD, RubricIndex, match, match_claim

__all__ = [
    "ANNOTATOR_JUDGE",
    "CLAIM_THRESHOLD",
    "MAJORITY_JUDGE",
    "QUESTION_THRESHOLD",
    "LabelImport",
    "RubricIndex",
    "import_kqa_nli",
    "match",
    "match_claim",
]
