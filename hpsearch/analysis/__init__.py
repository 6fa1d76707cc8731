"""What a finished search means: the report's tables, choosing honestly, and final-test's retrain-and-score.

Nothing here prints or writes files (``render`` does); only ``final_test`` holds the test split.
"""

from hpsearch.analysis.choose import Choice, choose, corrected_ttest, fold_scores
from hpsearch.analysis.final_test import Chosen, FinalTest, choose_for_test, final_test
from hpsearch.analysis.report import Report, build_report

__all__ = [
    "Choice",
    "Chosen",
    "FinalTest",
    "Report",
    "build_report",
    "choose",
    "choose_for_test",
    "corrected_ttest",
    "final_test",
    "fold_scores",
]
