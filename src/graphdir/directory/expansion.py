"""``$expand`` of directory objects: each object's first related items, read for a whole page at once.

Graph expands ``members`` and ``owners`` of groups and ``memberOf`` of users and returns at most 20
related items per object, with no nextLink (https://learn.microsoft.com/en-us/graph/query-parameters#expand-parameter).
Unlike the members and owners listings, an expansion includes service principals on v1.0: it is
the documented workaround of that listing's known issue
(https://learn.microsoft.com/en-us/graph/api/group-list-members). docs/behaviour.md#expand.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphdir.store.base import EdgeRelation, Store, StoredObject

#: Related items an expansion returns per object, without a nextLink (query-parameters.md's note on
#: directory objects).
EXPAND_LIMIT = 20

#: The store relation behind each expandable relationship.
RELATIONS: dict[str, EdgeRelation] = {"members": "members", "owners": "owners", "memberOf": "memberOf"}


async def related(store: Store, tenant_id: str, anchors: Sequence[StoredObject], relation: str) -> dict[str, list[StoredObject]]:
    """Each anchor's first :data:`EXPAND_LIMIT` live related objects, in id
    order (the listings' order), in one store read; an anchor with none maps to ``[]``."""
    found = await store.list_edges_many(tenant_id, RELATIONS[relation], [a.id for a in anchors], EXPAND_LIMIT)
    return {a.id: found.get(a.id, []) for a in anchors}
