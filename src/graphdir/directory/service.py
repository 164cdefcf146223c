"""The directory: Graph's domain rules over a :class:`~graphdir.store.base.Store`.

Imports nothing from HTTP. Every public method implements one Graph
operation and cites its doc page; writes run inside the store's single
writer so that their checks and their change are one transaction.
"""

from __future__ import annotations

from graphdir.directory.groups import GroupsMixin
from graphdir.directory.membership import MembershipMixin
from graphdir.directory.users import UsersMixin
from graphdir.settings import Settings
from graphdir.store.base import Store


class Directory(UsersMixin, GroupsMixin, MembershipMixin):
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
