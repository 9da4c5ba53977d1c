"""A batch run: items, in-process or Ray execution, scoring, reports."""
