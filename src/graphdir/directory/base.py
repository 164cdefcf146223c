"""What every part of the directory holds: the store and the settings."""

from __future__ import annotations

from graphdir.settings import Settings
from graphdir.store.base import Store


class DirectoryBase:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
