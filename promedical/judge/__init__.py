"""The judge: labels every (response, criterion) and adjudicates pairs under the injected criteria."""
