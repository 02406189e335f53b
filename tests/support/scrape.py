"""Reading /metrics as Prometheus does: every sample by name and labels, and how far a
counter moved between two scrapes."""

from __future__ import annotations

from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(client: Any) -> Samples:
    """/metrics through a Flask test client."""
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(resp.get_data(as_text=True))


def scrape_url(base: str) -> Samples:
    """/metrics of a running server (``idp serve``: every worker's counts added up)."""
    resp = requests.get(base + "/metrics", timeout=30)
    assert resp.status_code == 200, resp.status_code
    return parse(resp.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
