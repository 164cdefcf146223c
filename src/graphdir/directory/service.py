"""The directory: Graph's domain rules over a :class:`~graphdir.store.base.Store`.

Imports nothing from HTTP. Every public method implements one Graph
operation and cites its doc page; writes run inside the store's single
writer so that their checks and their change are one transaction.
Layers: :class:`UsersMixin` → :class:`GroupsMixin` → :class:`MembershipMixin` → :class:`TransitiveMixin`
and :class:`FunctionsMixin`.
"""

from __future__ import annotations

from graphdir.directory.functions import FunctionsMixin
from graphdir.directory.transitive import TransitiveMixin


class Directory(TransitiveMixin, FunctionsMixin):
    """Users, groups, members, owners, memberOf, the transitive relationships and the membership functions for every tenant in one store."""
