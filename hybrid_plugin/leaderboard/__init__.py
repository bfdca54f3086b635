"""Leaderboards: one CSV per task, rows built from results JSON files only, validated, rendered.

``schema`` (what a row is: pydantic), ``rows`` (a row from a results JSON), ``csvfile`` (strict
reading, atomic sorted writing), ``board`` (submit and validate), ``render`` (README, HTML page,
plots), ``cli`` (``hybrid-plugin leaderboard submit|validate|render``).
"""
