"""Expert review web app: rubric review rounds, double-blind adjudication and reviewer agreement."""
