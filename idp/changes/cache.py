"""Rows held in process as immutable views, dropped when their generation moves."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from idp.changes.watch import Generations
from idp.db import Database

V = TypeVar("V")

# Past this many entries a cache starts over (unknown keys are remembered too).
MAX_ENTRIES = 10_000


class ViewCache(Generic[V]):
    """``get(key)`` answers from memory, reading the row once per key until the generation
    named ``name`` moves (idp.changes.watch), when everything is dropped."""

    def __init__(
        self,
        db: Database,
        generations: Generations,
        name: str,
        load: Callable[[Session, str], V | None],
    ) -> None:
        self._db = db
        self._generations = generations
        self._load = load
        self._lock = threading.Lock()
        self._by_key: dict[str, V | None] = {}
        self._epoch = 0
        generations.on_change(name, self.forget)

    def forget(self) -> None:
        with self._lock:
            self._epoch += 1
            self._by_key = {}

    def get(self, key: str) -> V | None:
        self._generations.check()
        try:
            return self._by_key[key]
        except KeyError:
            pass
        epoch = self._epoch
        with self._db.read() as s:
            view = self._load(s, key)
        with self._lock:
            # A change seen while the row was read may have made it stale: keep it out.
            if epoch == self._epoch:
                if len(self._by_key) >= MAX_ENTRIES:
                    self._by_key = {}
                self._by_key[key] = view
        return view
