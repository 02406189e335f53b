"""The operator dashboard and admin API (a Flask app of its own; see SPEC §5)."""
