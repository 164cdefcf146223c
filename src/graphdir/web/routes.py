"""The route table: every Graph path graphdir serves, its handler, its permissions and its doc page.

Permission lists are least-privileged first, from the permission tables of the operations' doc
pages (https://learn.microsoft.com/en-us/graph/permissions-reference). A :class:`Route` cannot be built without a :class:`Perms` (or the explicit
:data:`ANONYMOUS` marker) and a doc page, so a route without them does not start.

The README's "What is served" table is generated from this table
(``python -m graphdir.web.routes --markdown``; ``--write README.md`` replaces it between the
``<!-- routes:begin -->`` / ``<!-- routes:end -->`` markers) and a test fails when they drift.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graphdir.auth.permissions import Perms
from graphdir.web import handlers_functions as f
from graphdir.web import handlers_objects as o
from graphdir.web import handlers_relations as r
from graphdir.web import handlers_transitive as tr
from graphdir.web.router import ANONYMOUS, Anonymous, Handler, Route

API = "https://learn.microsoft.com/en-us/graph/api/"

_GROUP_READ = ("GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All")
_DELEGATED_LEGACY = ("Directory.AccessAsUser.All",)
READ_GROUPS = Perms(_GROUP_READ + _DELEGATED_LEGACY, _GROUP_READ)
CREATE_GROUP = Perms(("Group.ReadWrite.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"))
WRITE_GROUP = Perms(("Group.ReadWrite.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("Group.ReadWrite.All", "Directory.ReadWrite.All"))
# group-post-members.md / group-delete-members.md (2021 beta table, seed page's scopes included)
WRITE_MEMBERS = Perms(
    ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY,
    ("GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"),
)
WRITE_OWNERS = WRITE_GROUP
_USER_READ = ("User.ReadBasic.All", "User.Read.All", "Directory.Read.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
READ_USERS = Perms(_USER_READ + _DELEGATED_LEGACY, ("User.Read.All", "Directory.Read.All", "User.ReadWrite.All", "Directory.ReadWrite.All"))
# user-get.md: /me with User.Read (least), User.ReadWrite (it includes reading one's own profile) or any broader read.
READ_ME = Perms(("User.Read", "User.ReadWrite") + _USER_READ + _DELEGATED_LEGACY, ("User.Read.All",), personal=("User.Read", "User.ReadWrite"))
# user-update.md: a signed-in user may update their own profile with User.ReadWrite.
WRITE_ME = Perms(("User.ReadWrite", "User.ReadWrite.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("User.ReadWrite.All",), personal=("User.ReadWrite",))
WRITE_USERS = Perms(("User.ReadWrite.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("User.ReadWrite.All", "Directory.ReadWrite.All"))
READ_MEMBER_OF = Perms(
    ("User.Read", "GroupMember.Read.All") + _USER_READ + _GROUP_READ + _DELEGATED_LEGACY,
    ("GroupMember.Read.All", "Directory.Read.All") + _USER_READ + _GROUP_READ,
)
# user-list-transitivememberof.md: another user's memberships need User.Read.All (least) or a higher read;
# the signed-in user's own (/me) need only User.Read. Application tokens cannot use /me (delegated_only).
_TRANSITIVE_MEMBER_OF_READ = ("User.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "Group.Read.All", "GroupMember.Read.All")
READ_TRANSITIVE_MEMBER_OF = Perms(_TRANSITIVE_MEMBER_OF_READ + _DELEGATED_LEGACY, _TRANSITIVE_MEMBER_OF_READ)
READ_MY_TRANSITIVE_MEMBER_OF = Perms(("User.Read",) + _TRANSITIVE_MEMBER_OF_READ + _DELEGATED_LEGACY, _TRANSITIVE_MEMBER_OF_READ)
# group-list-transitivememberof.md: delegated GroupMember.Read.All (least); application Directory.Read.All (least).
READ_GROUP_ANCESTORS = Perms(
    ("GroupMember.Read.All", "Directory.Read.All", "Directory.ReadWrite.All", "Group.Read.All") + _DELEGATED_LEGACY,
    ("Directory.Read.All", "Directory.ReadWrite.All"),
)
READ_DIRECTORY = Perms(("Directory.Read.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("Directory.Read.All", "Directory.ReadWrite.All"))
ADMIN = Perms(("Graphdir.Admin",), ("Graphdir.Admin",))
# directoryobject-checkmembergroups.md / -getmembergroups.md: "User.ReadBasic.All and GroupMember.Read.All, …,
# Directory.Read.All": a user-read permission and a group-read one (Directory.Read.All is both)
_GROUPS_TOO = _GROUP_READ + _DELEGATED_LEGACY
_USER_READ_APP = ("User.Read.All", "Directory.Read.All", "User.ReadWrite.All", "Directory.ReadWrite.All")
USER_MEMBER_GROUPS = Perms(_USER_READ + _DELEGATED_LEGACY, _USER_READ_APP, also=_GROUPS_TOO)
ME_MEMBER_GROUPS = Perms(("User.Read", "User.ReadWrite") + _USER_READ + _DELEGATED_LEGACY, _USER_READ_APP, also=_GROUPS_TOO)
# directoryobject-checkmemberobjects.md / -getmemberobjects.md, "Memberships for a user": no group permission
# (User.ReadWrite as on GET /me: it includes reading one's own profile)
USER_MEMBER_OBJECTS = Perms(("User.Read", "User.ReadWrite") + _USER_READ_APP + _DELEGATED_LEGACY, _USER_READ_APP)
FUNCTIONS = (
    ("checkMemberGroups", f.check_member_groups, "directoryobject-checkmembergroups"),
    ("checkMemberObjects", f.check_member_objects, "directoryobject-checkmemberobjects"),
    ("getMemberGroups", f.get_member_groups, "directoryobject-getmembergroups"),
    ("getMemberObjects", f.get_member_objects, "directoryobject-getmemberobjects"),
)
#: ``$expand`` of a relationship needs what listing it needs (docs/behaviour.md#expand).
EXPANSION_PERMS = {"members": READ_GROUPS, "owners": READ_GROUPS, "memberOf": READ_MEMBER_OF}


def _routes() -> list[Route]:
    t: list[Route] = []

    def add(method: str, path: str, handler: Handler, perms: Perms | Anonymous, doc: str, note: str = "") -> None:
        pattern = tuple(path.split("/"))
        url = doc if "://" in doc else API + doc
        t.append(Route(method, pattern, handler, perms, f"{method} /{path}", url, delegated_only=pattern[0] == "me", note=note))

    # the service document of the whole API: anonymous, as Graph's is
    add("GET", "$metadata", o.metadata, ANONYMOUS, "https://learn.microsoft.com/en-us/graph/traverse-the-graph", "CSDL of the types served, per version")
    # users
    add("GET", "users", o.list_users, READ_USERS, "user-list")
    add("GET", "users/$count", o.count_users, READ_USERS, "user-list")
    add("POST", "users", o.create_user, WRITE_USERS, "user-post-users")
    add("GET", "users/{uid}", o.get_user, READ_USERS, "user-get", "by id, userPrincipalName or `users('…')`")
    add("PATCH", "users/{uid}", o.update_user, WRITE_USERS, "user-update")
    add("DELETE", "users/{uid}", o.delete_user, WRITE_USERS, "user-delete")
    add("GET", "me", o.get_user, READ_ME, "user-get", "delegated tokens only")
    add("PATCH", "me", o.update_user, WRITE_ME, "user-update")
    for base in ("users/{uid}", "me"):
        add("GET", f"{base}/memberOf", r.user_member_of, READ_MEMBER_OF, "user-list-memberof")
        add("GET", f"{base}/memberOf/$count", r.count_user_member_of, READ_MEMBER_OF, "user-list-memberof")
        add("GET", f"{base}/memberOf/{{cast}}", r.user_member_of, READ_MEMBER_OF, "user-list-memberof")
        add("GET", f"{base}/memberOf/{{cast}}/$count", r.count_user_member_of, READ_MEMBER_OF, "user-list-memberof")
    for base, perms in (("users/{uid}", READ_TRANSITIVE_MEMBER_OF), ("me", READ_MY_TRANSITIVE_MEMBER_OF)):
        add("GET", f"{base}/transitiveMemberOf", tr.user_transitive_member_of, perms, "user-list-transitivememberof")
        add("GET", f"{base}/transitiveMemberOf/$count", tr.count_user_transitive_member_of, perms, "user-list-transitivememberof")
        add("GET", f"{base}/transitiveMemberOf/{{cast}}", tr.user_transitive_member_of, perms, "user-list-transitivememberof")
        add("GET", f"{base}/transitiveMemberOf/{{cast}}/$count", tr.count_user_transitive_member_of, perms, "user-list-transitivememberof")
    # groups
    add("GET", "groups", o.list_groups, READ_GROUPS, "group-list")
    add("GET", "groups/$count", o.count_groups, READ_GROUPS, "group-list")
    add("POST", "groups", o.create_group, CREATE_GROUP, "group-post-groups")
    add("GET", "groups/{gid}", o.get_group, READ_GROUPS, "group-get")
    add("PATCH", "groups/{gid}", o.update_group, WRITE_GROUP, "group-update", "incl. `members@odata.bind` / `owners@odata.bind` (20 links)")
    add("DELETE", "groups/{gid}", o.delete_group, WRITE_GROUP, "group-delete")
    # members
    add("GET", "groups/{gid}/members", r.list_members, READ_GROUPS, "group-list-members")
    add("GET", "groups/{gid}/members/$count", r.count_members, READ_GROUPS, "group-list-members")
    add("GET", "groups/{gid}/members/$ref", r.list_member_refs, READ_GROUPS, "group-list-members")
    add("POST", "groups/{gid}/members/$ref", r.add_member, WRITE_MEMBERS, "group-post-members")
    add("DELETE", "groups/{gid}/members/$ref", r.remove_member_by_at_id, WRITE_MEMBERS, "group-delete-members", "`?@id=…` (the SDKs' form)")
    add("DELETE", "groups/{gid}/members/$ref/{mid}", r.remove_member, WRITE_MEMBERS, "group-delete-members", "the 2015 seed page's form")
    add("GET", "groups/{gid}/members/{cast}", r.list_members, READ_GROUPS, "group-list-members")
    add("GET", "groups/{gid}/members/{cast}/$count", r.count_members, READ_GROUPS, "group-list-members")
    add("GET", "groups/{gid}/members/{mid}", r.get_member, READ_GROUPS, "group-list-members")
    add("DELETE", "groups/{gid}/members/{mid}", r.delete_member_object, WRITE_MEMBERS, "group-delete-members", "deletes the member object, as Graph does")
    add("DELETE", "groups/{gid}/members/{mid}/$ref", r.remove_member, WRITE_MEMBERS, "group-delete-members")
    # owners
    add("GET", "groups/{gid}/owners", r.list_owners, READ_GROUPS, "group-list-owners")
    add("GET", "groups/{gid}/owners/$count", r.count_owners, READ_GROUPS, "group-list-owners")
    add("GET", "groups/{gid}/owners/$ref", r.list_owner_refs, READ_GROUPS, "group-list-owners")
    add("POST", "groups/{gid}/owners/$ref", r.add_owner, WRITE_OWNERS, "group-post-owners", "at most 100 owners")
    add("DELETE", "groups/{gid}/owners/$ref", r.remove_owner_by_at_id, WRITE_OWNERS, "group-delete-owners")
    add("GET", "groups/{gid}/owners/{cast}", r.list_owners, READ_GROUPS, "group-list-owners")
    add("GET", "groups/{gid}/owners/{cast}/$count", r.count_owners, READ_GROUPS, "group-list-owners")
    add("DELETE", "groups/{gid}/owners/{oid}/$ref", r.remove_owner, WRITE_OWNERS, "group-delete-owners", "not the last owner")
    # memberOf of groups, directoryObjects
    add("GET", "groups/{gid}/memberOf", r.group_member_of, READ_GROUPS, "group-list-memberof")
    add("GET", "groups/{gid}/memberOf/$count", r.count_group_member_of, READ_GROUPS, "group-list-memberof")
    add("GET", "groups/{gid}/memberOf/{cast}", r.group_member_of, READ_GROUPS, "group-list-memberof")
    add("GET", "groups/{gid}/memberOf/{cast}/$count", r.count_group_member_of, READ_GROUPS, "group-list-memberof")
    # transitive relationships of groups (docs/behaviour.md#transitive-membership)
    add("GET", "groups/{gid}/transitiveMembers", tr.list_transitive_members, READ_GROUPS, "group-list-transitivemembers")
    add("GET", "groups/{gid}/transitiveMembers/$count", tr.count_transitive_members, READ_GROUPS, "group-list-transitivemembers")
    add("GET", "groups/{gid}/transitiveMembers/{cast}", tr.list_transitive_members, READ_GROUPS, "group-list-transitivemembers")
    add("GET", "groups/{gid}/transitiveMembers/{cast}/$count", tr.count_transitive_members, READ_GROUPS, "group-list-transitivemembers")
    add("GET", "groups/{gid}/transitiveMemberOf", tr.group_transitive_member_of, READ_GROUP_ANCESTORS, "group-list-transitivememberof")
    add("GET", "groups/{gid}/transitiveMemberOf/$count", tr.count_group_transitive_member_of, READ_GROUP_ANCESTORS, "group-list-transitivememberof")
    add("GET", "groups/{gid}/transitiveMemberOf/{cast}", tr.group_transitive_member_of, READ_GROUP_ANCESTORS, "group-list-transitivememberof")
    add("GET", "groups/{gid}/transitiveMemberOf/{cast}/$count", tr.count_group_transitive_member_of, READ_GROUP_ANCESTORS, "group-list-transitivememberof")
    add("GET", "directoryObjects/{id}", o.get_directory_object, READ_DIRECTORY, "directoryobject-get")
    # the membership functions (transitive; docs/behaviour.md#membership-functions) and getByIds
    add("POST", "directoryObjects/getByIds", f.get_by_ids, READ_DIRECTORY, "directoryobject-getbyids", "at most 1,000 ids")
    for name, handler, doc in FUNCTIONS:
        groups = name.endswith("Groups")
        note = "at most 20 ids" if name.startswith("check") else ""
        add("POST", f"users/{{uid}}/{name}", handler, USER_MEMBER_GROUPS if groups else USER_MEMBER_OBJECTS, doc, note)
        add("POST", f"me/{name}", handler, ME_MEMBER_GROUPS if groups else USER_MEMBER_OBJECTS, doc, note)
        add("POST", f"groups/{{gid}}/{name}", handler, READ_GROUPS, doc, note)
        add("POST", f"directoryObjects/{{id}}/{name}", handler, READ_DIRECTORY, doc, note)
    return t


ROUTES = _routes()
ADMIN_ROUTES = [
    Route(
        "POST",
        ("seed",),
        o.seed,
        ADMIN,
        "POST /graphdir/admin/seed",
        "docs/behaviour.md#groups-and-users",
        note="objects Graph cannot create: distribution, mail-enabled security and synced groups, devices, service principals, "
        "org contacts (also `graphdir seed FILE.json`)",
    )
]

BEGIN, END = "<!-- routes:begin -->", "<!-- routes:end -->"


def _permissions(perms: Perms | Anonymous) -> str:
    if isinstance(perms, Anonymous):
        return "none (anonymous)"
    least = dict.fromkeys(p[0] for p in (perms.delegated, perms.application) if p)
    also = f" + `{perms.also[0]}`" if perms.also else ""
    return " / ".join(f"`{p}`{also}" for p in least)


def _doc_link(doc: str) -> str:
    name = doc.rsplit("/", 1)[-1].split("#")[0]
    return f"[{name}]({doc})"


def markdown_table(routes: list[Route] | None = None, admin: list[Route] | None = None) -> str:
    """The README's "What is served" table: one row per route (method, path, the least-privileged
    delegated / application permission, doc page), generated so it cannot drift from the table."""
    graph = ROUTES if routes is None else routes
    rows = [
        "Under both `/v1.0` and `/beta` (path segments are case-insensitive; `{cast}` is an OData cast such as "
        "`microsoft.graph.user` or `graph.user`; `users/{uid}` also takes a userPrincipalName or `users('…')`):",
        "",
        "| method | path | least-privileged permission (delegated / application; one name when both are the same) | Microsoft Graph doc | notes |",
        "|---|---|---|---|---|",
    ]
    for route in graph:
        rows.append(f"| {route.method} | `/{'/'.join(route.pattern)}` | {_permissions(route.perms)} | {_doc_link(route.doc)} | {route.note} |")
    rows += ["", "graphdir's own API (not Graph):", "", "| method | path | role | doc | notes |", "|---|---|---|---|---|"]
    for route in ADMIN_ROUTES if admin is None else admin:
        path = f"/graphdir/admin/{'/'.join(route.pattern)}"
        rows.append(f"| {route.method} | `{path}` | {_permissions(route.perms)} | [{route.doc}]({route.doc}) | {route.note} |")
    return "\n".join(rows) + "\n"


def replace_between_markers(text: str, table: str) -> str:
    """``text`` with what lies between the routes markers replaced by ``table``."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + table + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphdir.web.routes", description="The route table as the README shows it.")
    parser.add_argument("--markdown", action="store_true", help="print the Markdown table of every route")
    parser.add_argument("--write", metavar="README", type=Path, help="replace the table between the routes markers of this file")
    args = parser.parse_args(argv)
    table = markdown_table()
    if args.write is not None:
        args.write.write_text(replace_between_markers(args.write.read_text(), table))
    elif args.markdown:
        sys.stdout.write(table)
    else:
        parser.print_help()
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through main() in the tests
    raise SystemExit(main())
