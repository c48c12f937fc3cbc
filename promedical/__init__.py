"""ProMedical: align medical language models with physician-derived, hierarchical, fine-grained criteria."""

__version__ = "0.1.0"
