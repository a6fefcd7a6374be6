"""The terminal workbench (``explainer``, ``explainer tui``, ``explainer demo`` in a terminal).

A Textual app on top of the same functions the CLI calls (explainer.pipeline, the
renderers, the export): it holds no analysis logic, only state and screens.
"""
