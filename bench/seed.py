"""The benchmark tenant: deterministic ids, a fast bulk load through graphdir's own store, and the
request pools the load generators read (one existing or missing membership per line).

Layout (``Scale`` names the sizes; the full run uses the defaults):

* ``users`` regular users, each a member of exactly one regular group;
* ``groups`` regular groups of ``group_size`` user members; groups ``0 … nest_parents-1`` also hold
  ``nest_fanout`` child groups each (a tree: group ``c`` is a member of group ``(c-1) // fanout``),
  which gives the transitive cases nesting to walk;
* one large group holding ``big`` users (the regular users plus ``big - users`` more);
* pools: ``remove`` = memberships of leaf groups (exactly ``group_size`` members each), shuffled so
  consecutive requests hit different groups; ``remove_big`` = the large group's memberships, shuffled;
  ``add`` = (leaf group, user) pairs that are *not* memberships; ``remove_nested`` = the tree's
  (parent, child group) memberships and those of ``nested_extra`` empty groups nested in the large
  group, shuffled.

The transitive cases use the tree: its root (group 0) holds 2,046 nested groups at depths 1–10, and
a user of a deepest group (``deep_user``) is a transitive member of the 11 groups on its path.

Ids are GUIDs drawn from a seeded RNG (random, as Graph's are, so deletes touch random B-tree pages).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from graphdir.store.base import StoredObject

CREATED = "2026-01-01T00:00:00Z"
# One precomputed password hash for every seeded user (a real one costs 20,000 PBKDF2 rounds).
_PW_HASH = "pbkdf2$20000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@dataclass(frozen=True)
class Scale:
    users: int = 100_000
    groups: int = 10_000
    group_size: int = 10
    big: int = 1_000_000
    nest_fanout: int = 2
    nest_parents: int = 1023  # groups 0..1022 hold children 1..2046: a binary tree 10 levels deep under group 0
    nested_extra: int = 20_000  # empty groups nested in the large group: the pool of nested-group removals
    seed: int = 20260101

    @property
    def total_users(self) -> int:
        return max(self.users, self.big)


FULL = Scale()
QUICK = Scale(users=50_000, groups=5_000, big=100_000)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass
class Tenant:
    scale: Scale
    user_ids: list[str]
    group_ids: list[str]
    big_id: str
    extra_ids: list[str]

    def group_members(self, g: int) -> list[int]:
        s = self.scale
        return [(g * s.group_size + j) % s.users for j in range(s.group_size)]

    def children(self, g: int) -> list[int]:
        s = self.scale
        if g >= s.nest_parents:
            return []
        return [c for c in range(g * s.nest_fanout + 1, (g + 1) * s.nest_fanout + 1) if c < s.groups]

    def is_leaf(self, g: int) -> bool:
        return not self.children(g)


def make_tenant(scale: Scale) -> Tenant:
    rng = random.Random(scale.seed)
    users = [_guid(rng) for _ in range(scale.total_users)]
    groups = [_guid(rng) for _ in range(scale.groups)]
    big = _guid(rng)
    return Tenant(scale, users, groups, big, [_guid(rng) for _ in range(scale.nested_extra)])


def _user(tid: str, uid: str, i: int) -> StoredObject:
    upn = f"u{i}@contoso.onmicrosoft.com"
    props: dict[str, Any] = {
        "businessPhones": [], "givenName": "User", "jobTitle": None, "mail": upn, "mobilePhone": None,
        "officeLocation": None, "preferredLanguage": None, "surname": f"{i}", "userType": "Member",
        "otherMails": [], "proxyAddresses": [], "imAddresses": [], "createdDateTime": CREATED, "creationType": None,
        "displayName": f"User {i}", "mailNickname": f"u{i}", "accountEnabled": True, "userPrincipalName": upn,
        "passwordProfile": {"forceChangePasswordNextSignIn": False, "hash": _PW_HASH}, "id": uid, "deletedDateTime": None,
    }
    return StoredObject(tid, uid, "user", props, CREATED)


def _group(tid: str, gid: str, name: str, nick: str) -> StoredObject:
    body = {"displayName": name, "mailNickname": nick, "mailEnabled": False, "securityEnabled": True, "groupTypes": []}
    try:  # the same default property set POST /groups stores
        from graphdir.directory.groups import _group_defaults

        props = _group_defaults(gid, CREATED, body, "contoso.onmicrosoft.com")
    except ImportError:  # pragma: no cover - internals moved; a plain security group still works
        props = {"id": gid, "createdDateTime": CREATED, "deletedDateTime": None, **body}
    return StoredObject(tid, gid, "group", props, CREATED)


def load(store: Any, tid: str, t: Tenant, log: Any = print) -> dict[str, float]:
    """Bulk-load the tenant through ``SqliteStore.bulk_load`` (sorted keys: B-tree appends)."""
    s = t.scale
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    order = sorted(range(s.total_users), key=t.user_ids.__getitem__)
    store.bulk_load(tid, (_user(tid, t.user_ids[i], i) for i in order), [])
    timings["users_s"] = time.perf_counter() - t0
    log(f"  {s.total_users:,} users in {timings['users_s']:.1f} s")

    t0 = time.perf_counter()
    objs = [_group(tid, t.group_ids[g], f"Group {g}", f"g{g}") for g in range(s.groups)]
    objs.append(_group(tid, t.big_id, "Everyone (large)", "everyone"))
    objs += [_group(tid, x, f"Nested {i}", f"n{i}") for i, x in enumerate(t.extra_ids)]
    objs.sort(key=lambda o: o.id)
    edges: list[tuple[str, str, str]] = []
    for g in range(s.groups):
        gid = t.group_ids[g]
        edges += [(gid, t.user_ids[u], "user") for u in t.group_members(g)]
        edges += [(gid, t.group_ids[c], "group") for c in t.children(g)]
    edges += [(t.big_id, uid, "user") for uid in t.user_ids[: s.big]]
    edges += [(t.big_id, x, "group") for x in t.extra_ids]
    edges.sort()
    store.bulk_load(tid, objs, edges)
    timings["groups_members_s"] = time.perf_counter() - t0
    log(f"  {len(objs):,} groups, {len(edges):,} memberships in {timings['groups_members_s']:.1f} s")
    return timings


# -- request pools ------------------------------------------------------------------------------
def pools(t: Tenant) -> dict[str, list[tuple[str, str]]]:
    s = t.scale
    rng = random.Random(s.seed + 1)
    leaves = [g for g in range(s.groups) if t.is_leaf(g)]
    remove = [(t.group_ids[g], t.user_ids[u]) for g in leaves for u in t.group_members(g)]
    rng.shuffle(remove)
    big = [(t.big_id, uid) for uid in t.user_ids[: s.big]]
    rng.shuffle(big)
    # Not-yet memberships: users of the group half-way round the ring (never the group itself).
    add: list[tuple[str, str]] = []
    half = s.groups // 2
    for g in leaves:
        for k in (half, half + 1):
            add += [(t.group_ids[g], t.user_ids[u]) for u in t.group_members((g + k) % s.groups)]
    rng.shuffle(add)
    nested = [(t.group_ids[g], t.group_ids[c]) for g in range(s.groups) for c in t.children(g)]
    nested += [(t.big_id, x) for x in t.extra_ids]
    rng.shuffle(nested)
    return {"remove": remove, "remove_big": big, "add": add, "remove_nested": nested}


def deep_path(t: Tenant) -> tuple[str, list[str]]:
    """A user of the tree's last (deepest) group and the groups on its way up to the root, deepest first."""
    s = t.scale
    g = min(s.groups, s.nest_parents * s.nest_fanout + 1) - 1
    user = t.user_ids[t.group_members(g)[0]]
    path = [g]
    while path[-1] > 0:
        path.append((path[-1] - 1) // s.nest_fanout)
    return user, [t.group_ids[x] for x in path]


def write_pool(path: Path, pairs: list[tuple[str, str]]) -> None:
    with open(path, "w") as fh:
        fh.writelines(f"{g} {m}\n" for g, m in pairs)


def scale_dict(s: Scale) -> dict[str, Any]:
    return asdict(s) | {"total_users": s.total_users}


def iter_ldif(t: Tenant, suffix: str) -> Iterator[str]:
    """The same large group for slapd: users under ou=people, the group as a groupOfNames."""
    s = t.scale
    yield f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\no: bench\ndc: {suffix.split(',')[0][3:]}\n\n"
    yield f"dn: ou=people,{suffix}\nobjectClass: organizationalUnit\nou: people\n\n"
    yield f"dn: ou=groups,{suffix}\nobjectClass: organizationalUnit\nou: groups\n\n"
    for i, uid in enumerate(t.user_ids[: s.big]):
        yield (f"dn: uid={uid},ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: User {i}\nsn: {i}\n"
               f"displayName: User {i}\nmail: u{i}@contoso.onmicrosoft.com\n\n")
    head = f"dn: cn=everyone,ou=groups,{suffix}\nobjectClass: groupOfNames\ncn: everyone\n"
    yield head
    for uid in t.user_ids[: s.big]:
        yield f"member: uid={uid},ou=people,{suffix}\n"
    yield "\n"
