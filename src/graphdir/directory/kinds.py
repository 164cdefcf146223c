"""Group kinds and what each allows (docs/behaviour.md#group-kinds).

Kinds are told apart only by ``groupTypes``, ``mailEnabled`` and
``securityEnabled``; dynamic, on-premises-synced and role-assignable are
orthogonal flags.
"""

from __future__ import annotations

from typing import Any, Literal

from graphdir import errors

GroupKind = Literal["unified", "security", "mailSecurity", "distribution"]

#: Member types each kind may hold (concepts/includes/groups-allowed-member-types.md).
SECURITY_MEMBER_TYPES = frozenset({"user", "group", "device", "servicePrincipal", "orgContact"})
UNIFIED_MEMBER_TYPES = frozenset({"user"})
OWNER_TYPES = frozenset({"user", "servicePrincipal"})
MAX_OWNERS = 100
MAX_LINKS = 20


def _types(props: dict[str, Any]) -> tuple[bool, bool]:
    """(unified, dynamic) from ``groupTypes``, compared case-insensitively, in one pass."""
    unified = dynamic = False
    types = props.get("groupTypes")
    for t in types if isinstance(types, list) else ():
        low = str(t).lower()
        unified = unified or low == "unified"
        dynamic = dynamic or low == "dynamicmembership"
    return unified, dynamic


def _kind(props: dict[str, Any], unified: bool) -> GroupKind:
    if unified:
        return "unified"
    mail, sec = bool(props.get("mailEnabled")), bool(props.get("securityEnabled"))
    if mail and sec:
        return "mailSecurity"
    if mail:
        return "distribution"
    return "security"


def kind(props: dict[str, Any]) -> GroupKind:
    return _kind(props, _types(props)[0])


def is_unified(props: dict[str, Any]) -> bool:
    """A Microsoft 365 group: ``Unified`` among its ``groupTypes``."""
    return _types(props)[0]


def is_dynamic(props: dict[str, Any]) -> bool:
    return _types(props)[1]


def is_synced(props: dict[str, Any]) -> bool:
    return props.get("onPremisesSyncEnabled") is True


def check_membership_writable(props: dict[str, Any], mail_enabled_security: str) -> None:
    """Refuse membership writes Graph refuses (group-post-members.md, group-delete-members.md, docs/behaviour.md#group-kinds).

    Order: on-premises synced (400), distribution / mail-enabled security (400, the latter only
    when the ``mail_enabled_security_membership`` setting is ``refuse``), dynamic (403).
    """
    if is_synced(props):
        raise errors.on_premises_readonly()
    unified, dynamic = _types(props)
    k = _kind(props, unified)
    if k == "distribution" or (k == "mailSecurity" and mail_enabled_security == "refuse"):
        raise errors.mail_enabled_readonly()
    if dynamic:
        raise errors.forbidden()


def check_owners_writable(props: dict[str, Any], mail_enabled_security: str) -> None:
    """Owners of distribution and synced groups are managed elsewhere (group-list-owners.md).

    Mail-enabled security groups are Exchange-managed too (docs/behaviour.md#group-kinds): refused
    like their membership when the ``mail_enabled_security_membership`` setting is ``refuse``.
    """
    if is_synced(props):
        raise errors.on_premises_readonly()
    k = kind(props)
    if k == "distribution" or (k == "mailSecurity" and mail_enabled_security == "refuse"):
        raise errors.mail_enabled_readonly()


def allowed_member_types(props: dict[str, Any]) -> frozenset[str]:
    if kind(props) == "unified":
        return UNIFIED_MEMBER_TYPES
    if props.get("isAssignableToRole") is True:
        return frozenset({"user", "servicePrincipal"})
    return SECURITY_MEMBER_TYPES


#: The kinds of group a security group may hold (the member is not written, so a mail-enabled one may be nested).
NESTABLE_KINDS = frozenset({"security", "mailSecurity"})


def check_member_type(group: dict[str, Any], member_type: str, member: dict[str, Any]) -> None:
    """M365 groups hold users only; security groups hold security groups, mail-enabled ones included,
    but never M365 groups or distribution groups (docs/behaviour.md#membership; the transitive members
    page's example lists mail-enabled groups among a group's nested members:
    https://learn.microsoft.com/en-us/graph/api/group-list-transitivemembers)."""
    if member_type not in allowed_member_types(group):
        raise _unsupported_member(member_type)
    if member_type == "group" and kind(member) not in NESTABLE_KINDS:
        raise _unsupported_member(member_type)


def _unsupported_member(member_type: str) -> errors.GraphError:
    # Graph documents the 400 but not its text (docs/behaviour.md#directory-error-messages): a neutral message [INF].
    return errors.bad_request(f"An object of type '{member_type}' is unsupported as a member of this group.")


def cycle() -> errors.GraphError:
    """Circular nesting (Entra rejects it; no wire message found, docs/behaviour.md#directory-error-messages) [INF]."""
    return errors.bad_request("Adding this group as a member would create a circular membership.")
