"""The data pipeline: sources -> curated instructions -> drafted and reviewed rubrics -> candidates -> judged
pairs -> criterion-expanded rows and TRL exports, with splits and an independence audit (docs/data_pipeline.md)."""
