"""Who may do what: the acting principal and Graph's object-level rules.

Route-level permission lists live in :mod:`graphdir.web.routes`. What is
decided here needs the object: delegated callers also need a directory role
or ownership of the group (docs/identity.md#authorization), role-assignable groups
need ``RoleManagement.ReadWrite.Directory`` (docs/behaviour.md#group-kinds), and adding devices,
service principals and org contacts needs a grant for that type (https://learn.microsoft.com/en-us/graph/api/group-post-members).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from graphdir import errors
from graphdir.directory import kinds

# Directory role template ids (well-known, identical in every tenant).
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
GROUPS_ADMIN = "fdd7a751-b60b-444a-984c-02652fe8fa1c"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY_WRITERS = "9360feb5-f418-4baa-8175-e2a00bac4301"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
IDENTITY_GOVERNANCE_ADMIN = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
SHAREPOINT_ADMIN = "f28a1f50-f6e7-4571-818b-6a12f2af6b6c"
TEAMS_ADMIN = "69091246-20e8-4a56-aa4d-066075b2a7a8"
INTUNE_ADMIN = "3a2c62db-5318-420d-8d74-23affee5d9d5"
YAMMER_ADMIN = "810a2642-a034-447f-a5e8-41beaa378541"
KNOWLEDGE_ADMIN = "b5a8dcf3-09d5-43a9-a639-8e29ef291470"
KNOWLEDGE_MANAGER = "744ec460-397e-42ad-a462-8b3f9747a02c"
WINDOWS_365_ADMIN = "11451d60-acb2-45eb-a7d6-43d0f0125c13"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
APPLICATION_ADMIN = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3"
CLOUD_APPLICATION_ADMIN = "158c047a-c907-4556-b7ef-446551a6b5f7"

ROLE_NAMES = {
    GLOBAL_ADMIN: "Global Administrator",
    PRIVILEGED_ROLE_ADMIN: "Privileged Role Administrator",
    GROUPS_ADMIN: "Groups Administrator",
    USER_ADMIN: "User Administrator",
    DIRECTORY_WRITERS: "Directory Writers",
    DIRECTORY_READERS: "Directory Readers",
    IDENTITY_GOVERNANCE_ADMIN: "Identity Governance Administrator",
    EXCHANGE_ADMIN: "Exchange Administrator",
    SHAREPOINT_ADMIN: "SharePoint Administrator",
    TEAMS_ADMIN: "Teams Administrator",
    INTUNE_ADMIN: "Intune Administrator",
    YAMMER_ADMIN: "Yammer Administrator",
    KNOWLEDGE_ADMIN: "Knowledge Administrator",
    KNOWLEDGE_MANAGER: "Knowledge Manager",
    WINDOWS_365_ADMIN: "Windows 365 Administrator",
    GLOBAL_READER: "Global Reader",
    APPLICATION_ADMIN: "Application Administrator",
    CLOUD_APPLICATION_ADMIN: "Cloud Application Administrator",
}


def role_template_id(name_or_id: str) -> str:
    """A directory role's template id from its display name (case-insensitive) or the id itself."""
    key = name_or_id.strip().lower()
    for rid, name in ROLE_NAMES.items():
        if key in (rid, name.lower()):
            return rid
    raise ValueError(f"unknown directory role {name_or_id!r}; known: {', '.join(sorted(ROLE_NAMES.values()))}")

#: ``microsoft.directory/groups/members/update`` on any group.
_MEMBERS_UPDATE_ALL = {GLOBAL_ADMIN, GROUPS_ADMIN, DIRECTORY_WRITERS, IDENTITY_GOVERNANCE_ADMIN, USER_ADMIN}
_MEMBERS_UPDATE_UNIFIED = {EXCHANGE_ADMIN, SHAREPOINT_ADMIN, TEAMS_ADMIN, YAMMER_ADMIN}
_MEMBERS_UPDATE_SECURITY = {INTUNE_ADMIN}
#: Owners (docs/identity.md#authorization): Groups Administrator on all; User Administrator / Directory Writers for user
#: owners; Exchange/SharePoint/Teams/Yammer Administrator on Microsoft 365 groups; Intune, Knowledge
#: Administrator/Manager and Windows 365 Administrator on security groups.
_OWNERS_UPDATE_ALL = {GLOBAL_ADMIN, GROUPS_ADMIN}
_OWNERS_UPDATE_USERS = {USER_ADMIN, DIRECTORY_WRITERS}
_OWNERS_UPDATE_UNIFIED = {EXCHANGE_ADMIN, SHAREPOINT_ADMIN, TEAMS_ADMIN, YAMMER_ADMIN}
_OWNERS_UPDATE_SECURITY = {INTUNE_ADMIN, KNOWLEDGE_ADMIN, KNOWLEDGE_MANAGER, WINDOWS_365_ADMIN}
#: Creating, updating and deleting groups as a delegated user.
_GROUPS_WRITE = {GLOBAL_ADMIN, GROUPS_ADMIN, DIRECTORY_WRITERS, USER_ADMIN}
_USERS_WRITE = {GLOBAL_ADMIN, USER_ADMIN}

ROLE_MANAGEMENT = "RoleManagement.ReadWrite.Directory"


@dataclass(frozen=True)
class Actor:
    """The caller as the directory sees it (from a validated token)."""

    tenant_id: str
    delegated: bool = False
    user_id: str | None = None  # signed-in user (oid) for delegated tokens
    app_id: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)  # scp or roles
    role_ids: frozenset[str] = field(default_factory=frozenset)  # wids

    @property
    def label(self) -> str:
        return self.user_id or self.app_id or "system"

    def has(self, *perms: str) -> bool:
        return not self.permissions.isdisjoint(perms)


SYSTEM = Actor(tenant_id="", permissions=frozenset({"Directory.ReadWrite.All", ROLE_MANAGEMENT}))


def _require(ok: bool) -> None:
    if not ok:
        raise errors.forbidden()


def check_role_assignable(actor: Actor, group_props: dict[str, object]) -> None:
    """Role-assignable groups: ``RoleManagement.ReadWrite.Directory``, and for users Privileged Role Administrator."""
    if group_props.get("isAssignableToRole") is True and actor is not SYSTEM:
        _require(actor.has(ROLE_MANAGEMENT))
        if actor.delegated:
            _require(bool(actor.role_ids & {PRIVILEGED_ROLE_ADMIN, GLOBAL_ADMIN}))


def check_members_update(actor: Actor, group_props: dict[str, object], is_owner: bool) -> None:
    """``microsoft.directory/groups/members/update`` (group-post-members.md, group-delete-members.md)."""
    check_role_assignable(actor, group_props)
    if not actor.delegated or actor is SYSTEM:
        return
    if group_props.get("isAssignableToRole") is True:
        return  # owners do not qualify; the Privileged Role Administrator check above decided
    unified = kinds.is_unified(group_props)
    roles = actor.role_ids
    ok = is_owner or bool(roles & _MEMBERS_UPDATE_ALL)
    ok = ok or (unified and bool(roles & _MEMBERS_UPDATE_UNIFIED)) or (not unified and bool(roles & _MEMBERS_UPDATE_SECURITY))
    _require(ok)


def check_owners_update(actor: Actor, group_props: dict[str, object], is_owner: bool, owner_type: str) -> None:
    """Add/remove owner: Groups Administrator; User Administrator / Directory Writers for user owners; owners."""
    check_role_assignable(actor, group_props)
    if not actor.delegated or actor is SYSTEM:
        return
    roles = actor.role_ids
    unified = kinds.is_unified(group_props)
    _require(
        is_owner
        or bool(roles & _OWNERS_UPDATE_ALL)
        or (owner_type == "user" and bool(roles & _OWNERS_UPDATE_USERS))
        or (unified and bool(roles & _OWNERS_UPDATE_UNIFIED))
        or (not unified and bool(roles & _OWNERS_UPDATE_SECURITY))
    )


def check_group_write(actor: Actor, group_props: dict[str, object] | None, is_owner: bool) -> None:
    """Create (props None) / update / delete a group as a delegated user."""
    if group_props is not None:
        check_role_assignable(actor, group_props)
    if not actor.delegated or actor is SYSTEM:
        return
    if group_props is None:
        return  # any member user may create groups (default tenant setting)
    _require(is_owner or bool(actor.role_ids & _GROUPS_WRITE))


def check_user_write(actor: Actor, target_id: str | None) -> None:
    """Create / update / delete users as a delegated user: User Administrator or higher (self-update allowed)."""
    if not actor.delegated or actor is SYSTEM:
        return
    _require(bool(actor.role_ids & _USERS_WRITE) or (target_id is not None and target_id == actor.user_id))


#: Extra grant needed to add a member of this type (group-post-members.md, 2025 v1.0 table).
_MEMBER_TYPE_GRANTS = {
    "device": ("Device.ReadWrite.All", "Device.Read.All"),
    "servicePrincipal": ("Application.ReadWrite.All",),
    "orgContact": ("OrgContact.Read.All",),
}
_BROAD = ("Group.ReadWrite.All", "Directory.ReadWrite.All", "Directory.AccessAsUser.All")


def check_member_type_grant(actor: Actor, member_type: str) -> None:
    """Adding a device, service principal or org contact with ``GroupMember.ReadWrite.All`` needs that type's grant too."""
    if actor is SYSTEM or actor.has(*_BROAD):
        return
    needed = _MEMBER_TYPE_GRANTS.get(member_type)
    if needed is None:
        return
    if member_type == "device" and not actor.delegated:
        needed = ("Device.ReadWrite.All",)
    _require(actor.has(*needed))
