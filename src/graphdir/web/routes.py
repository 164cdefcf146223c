"""The route table: every Graph path graphdir serves, its handler and its permissions.

Permission lists are least-privileged first, from the doc pages' tables
(https://learn.microsoft.com/en-us/graph/permissions-reference). A :class:`Route`
cannot be built without a :class:`Perms`, so a route without permissions does
not start.
"""

from __future__ import annotations

from graphdir.auth.permissions import Perms
from graphdir.web import handlers_objects as o
from graphdir.web import handlers_relations as r
from graphdir.web.router import Route

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
READ_DIRECTORY = Perms(("Directory.Read.All", "Directory.ReadWrite.All") + _DELEGATED_LEGACY, ("Directory.Read.All", "Directory.ReadWrite.All"))
ADMIN = Perms(("Graphdir.Admin",), ("Graphdir.Admin",))


def _routes() -> list[Route]:
    t: list[Route] = []

    def add(method: str, path: str, handler: object, perms: Perms) -> None:
        pattern = tuple(path.split("/"))
        t.append(Route(method, pattern, handler, perms, f"{method} /{path}", delegated_only=pattern[0] == "me"))  # type: ignore[arg-type]

    # users
    add("GET", "users", o.list_users, READ_USERS)
    add("GET", "users/$count", o.count_users, READ_USERS)
    add("POST", "users", o.create_user, WRITE_USERS)
    add("GET", "users/{uid}", o.get_user, READ_USERS)
    add("PATCH", "users/{uid}", o.update_user, WRITE_USERS)
    add("DELETE", "users/{uid}", o.delete_user, WRITE_USERS)
    add("GET", "me", o.get_user, READ_ME)
    add("PATCH", "me", o.update_user, WRITE_ME)
    for base in ("users/{uid}", "me"):
        add("GET", f"{base}/memberOf", r.user_member_of, READ_MEMBER_OF)
        add("GET", f"{base}/memberOf/$count", r.count_user_member_of, READ_MEMBER_OF)
        add("GET", f"{base}/memberOf/{{cast}}", r.user_member_of, READ_MEMBER_OF)
        add("GET", f"{base}/memberOf/{{cast}}/$count", r.count_user_member_of, READ_MEMBER_OF)
    # groups
    add("GET", "groups", o.list_groups, READ_GROUPS)
    add("GET", "groups/$count", o.count_groups, READ_GROUPS)
    add("POST", "groups", o.create_group, CREATE_GROUP)
    add("GET", "groups/{gid}", o.get_group, READ_GROUPS)
    add("PATCH", "groups/{gid}", o.update_group, WRITE_GROUP)
    add("DELETE", "groups/{gid}", o.delete_group, WRITE_GROUP)
    # members
    add("GET", "groups/{gid}/members", r.list_members, READ_GROUPS)
    add("GET", "groups/{gid}/members/$count", r.count_members, READ_GROUPS)
    add("GET", "groups/{gid}/members/$ref", r.list_member_refs, READ_GROUPS)
    add("POST", "groups/{gid}/members/$ref", r.add_member, WRITE_MEMBERS)
    add("DELETE", "groups/{gid}/members/$ref", r.remove_member_by_at_id, WRITE_MEMBERS)
    add("DELETE", "groups/{gid}/members/$ref/{mid}", r.remove_member, WRITE_MEMBERS)
    add("GET", "groups/{gid}/members/{cast}", r.list_members, READ_GROUPS)
    add("GET", "groups/{gid}/members/{cast}/$count", r.count_members, READ_GROUPS)
    add("GET", "groups/{gid}/members/{mid}", r.get_member, READ_GROUPS)
    add("DELETE", "groups/{gid}/members/{mid}", r.delete_member_object, WRITE_MEMBERS)
    add("DELETE", "groups/{gid}/members/{mid}/$ref", r.remove_member, WRITE_MEMBERS)
    # owners
    add("GET", "groups/{gid}/owners", r.list_owners, READ_GROUPS)
    add("GET", "groups/{gid}/owners/$count", r.count_owners, READ_GROUPS)
    add("GET", "groups/{gid}/owners/$ref", r.list_owner_refs, READ_GROUPS)
    add("POST", "groups/{gid}/owners/$ref", r.add_owner, WRITE_OWNERS)
    add("DELETE", "groups/{gid}/owners/$ref", r.remove_owner_by_at_id, WRITE_OWNERS)
    add("GET", "groups/{gid}/owners/{cast}", r.list_owners, READ_GROUPS)
    add("GET", "groups/{gid}/owners/{cast}/$count", r.count_owners, READ_GROUPS)
    add("DELETE", "groups/{gid}/owners/{oid}/$ref", r.remove_owner, WRITE_OWNERS)
    # memberOf of groups, directoryObjects
    add("GET", "groups/{gid}/memberOf", r.group_member_of, READ_GROUPS)
    add("GET", "groups/{gid}/memberOf/$count", r.count_group_member_of, READ_GROUPS)
    add("GET", "groups/{gid}/memberOf/{cast}", r.group_member_of, READ_GROUPS)
    add("GET", "groups/{gid}/memberOf/{cast}/$count", r.count_group_member_of, READ_GROUPS)
    add("GET", "directoryObjects/{id}", o.get_directory_object, READ_DIRECTORY)
    return t


ROUTES = _routes()
ADMIN_ROUTES = [Route("POST", ("seed",), o.seed, ADMIN, "POST /graphdir/admin/seed")]
