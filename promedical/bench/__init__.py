"""ProMedical-Bench: held-out rubric evaluation with CIs, paired comparisons, external MCQ benchmarks, reports."""
