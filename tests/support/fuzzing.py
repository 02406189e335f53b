"""Settings of the property-based tests (hypothesis, and schemathesis on top of it).

``make test`` and CI run them derandomized: each test's examples follow from a hash of the
test itself, so one commit always gives one result and a red run is never chance. Cases
that fuzzing once found are pinned as plain tests beside the property (e.g.
tests/admin/test_api_contract.py), never left to luck.

``make fuzz`` (HYPOTHESIS_PROFILE=fuzz) hunts: fresh randomness on every run, many more
examples, and an example database in .hypothesis/ so a failure it finds is replayed first
on the next run until it is fixed.
"""

from __future__ import annotations

import os

import hypothesis
from hypothesis.database import DirectoryBasedExampleDatabase

COMMON = hypothesis.settings(
    deadline=None,  # a request may wait on the database; timings belong in bench/
    print_blob=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
hypothesis.settings.register_profile(
    "deterministic", COMMON, derandomize=True, database=None, max_examples=25
)
hypothesis.settings.register_profile(
    "fuzz",
    COMMON,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "500")),
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "deterministic")


def load() -> None:
    hypothesis.settings.load_profile(PROFILE)
