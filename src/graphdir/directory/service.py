"""The directory: Graph's domain rules over a :class:`~graphdir.store.base.Store`.

Imports nothing from HTTP. Every public method implements one Graph
operation and cites its doc page; writes run inside the store's single
writer so that their checks and their change are one transaction.
Layers: :class:`UsersMixin` → :class:`GroupsMixin` → :class:`MembershipMixin`.
"""

from __future__ import annotations

from graphdir.directory.membership import MembershipMixin


class Directory(MembershipMixin):
    """Users, groups, members, owners and memberOf for every tenant in one store."""
