"""How many argon2id computations a serving process runs at once (idp.accounts.passwords,
idp.serve.hash_slots): at most its share of the cores, the rest wait their turn."""

from __future__ import annotations

import threading
import time

import pytest

from idp import config, serve
from idp.accounts import passwords


class CountingHasher:
    """Stands in for argon2 (conftest's cheap one is too quick to overlap): records how
    many hashes and checks run at the same moment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def _one(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1

    def verify(self, _hash: str, _password: str) -> bool:
        self._one()
        return True

    def hash(self, _password: str) -> str:
        self._one()
        return "$argon2id$counted"


@pytest.mark.parametrize("slots", [1, 2])
def test_checks_and_hashes_run_at_most_slots_at_once(monkeypatch, slots):
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "HASHER", counting)
    monkeypatch.setattr(passwords, "_slots", passwords._slots)  # restored afterwards
    passwords.set_slots(slots)

    def work(i: int) -> None:
        for _ in range(3):
            if i % 2:
                passwords.verify("$argon2id$stored", "a password")
            else:
                passwords.hash_password("a password")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counting.most == slots
    assert counting.running == 0


def test_at_least_one_slot(monkeypatch):
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "HASHER", counting)
    monkeypatch.setattr(passwords, "_slots", passwords._slots)
    passwords.set_slots(0)
    answers: list[bool] = []
    check = threading.Thread(
        target=lambda: answers.append(passwords.verify("$x", "a password")), daemon=True
    )
    check.start()
    check.join(5)
    assert answers == [True], "no slot: the check never ran"
    assert counting.most == 1


@pytest.mark.parametrize(
    ("cores", "workers", "slots"),
    [(8, 0, 1), (8, 8, 1), (8, 2, 4), (8, 3, 2), (2, 4, 1), (1, 0, 1)],
)
def test_a_worker_gets_its_share_of_the_cores(monkeypatch, cores, workers, slots):
    """``[server] workers = 0`` is one worker per core: one hash at a time in each."""
    monkeypatch.setattr(serve, "cores", lambda: cores)
    cfg = config.from_mapping({"server": {"workers": workers}}, env={})
    assert serve.hash_slots(cfg) == slots
