"""Rubrics: the three-tier criteria model, its records, scoring, importers and exporters."""
