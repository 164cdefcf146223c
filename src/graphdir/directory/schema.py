"""Graph's property sets for the directory types we hold.

Which properties exist, which are returned by default, which a client may
set on create or update, and their JSON types. Sources: resources/group.md,
user-get.md, user-post-users.md, group-post-groups.md, group-update.md
(https://learn.microsoft.com/en-us/graph/api/resources/group, https://learn.microsoft.com/en-us/graph/api/resources/user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["string", "bool", "strings", "datetime", "int", "object", "objects"]


@dataclass(frozen=True)
class Prop:
    name: str
    kind: Kind
    default: bool = True  # returned without $select
    create: bool = False  # may be set on POST
    update: bool = False  # may be set on PATCH
    max_len: int | None = None
    write_only: bool = False  # never returned (passwordProfile)


def _props(*items: Prop) -> dict[str, Prop]:
    return {p.name: p for p in items}


GROUP = _props(
    Prop("id", "string"),
    Prop("deletedDateTime", "datetime"),
    Prop("classification", "string", create=True, update=True),
    Prop("createdDateTime", "datetime"),
    Prop("creationOptions", "strings", default=False, create=True),
    Prop("description", "string", create=True, update=True),
    Prop("displayName", "string", create=True, update=True, max_len=256),
    Prop("expirationDateTime", "datetime"),
    Prop("groupTypes", "strings", create=True),
    Prop("isAssignableToRole", "bool", create=True),
    Prop("mail", "string"),
    Prop("mailEnabled", "bool", create=True),
    Prop("mailNickname", "string", create=True, update=True, max_len=64),
    Prop("membershipRule", "string", create=True, update=True),
    Prop("membershipRuleProcessingState", "string", create=True, update=True),
    Prop("onPremisesDomainName", "string"),
    Prop("onPremisesLastSyncDateTime", "datetime"),
    Prop("onPremisesNetBiosName", "string"),
    Prop("onPremisesSamAccountName", "string"),
    Prop("onPremisesSecurityIdentifier", "string"),
    Prop("onPremisesSyncEnabled", "bool"),
    Prop("preferredDataLocation", "string", create=True, update=True),
    Prop("preferredLanguage", "string", create=True, update=True),
    Prop("proxyAddresses", "strings"),
    Prop("renewedDateTime", "datetime"),
    Prop("resourceBehaviorOptions", "strings", create=True),
    Prop("resourceProvisioningOptions", "strings", create=True),
    Prop("securityEnabled", "bool", create=True, update=True),
    Prop("securityIdentifier", "string"),
    Prop("theme", "string", create=True, update=True),
    Prop("visibility", "string", create=True, update=True),
    Prop("onPremisesProvisioningErrors", "objects"),
    Prop("serviceProvisioningErrors", "objects", default=False),
    Prop("uniqueName", "string", default=False, create=True),
)

USER = _props(
    Prop("businessPhones", "strings", create=True, update=True),
    Prop("displayName", "string", create=True, update=True, max_len=256),
    Prop("givenName", "string", create=True, update=True, max_len=64),
    Prop("id", "string"),
    Prop("jobTitle", "string", create=True, update=True, max_len=128),
    Prop("mail", "string", create=True, update=True),
    Prop("mobilePhone", "string", create=True, update=True),
    Prop("officeLocation", "string", create=True, update=True),
    Prop("preferredLanguage", "string", create=True, update=True),
    Prop("surname", "string", create=True, update=True, max_len=64),
    Prop("userPrincipalName", "string", create=True, update=True),
    # returned only with $select
    Prop("accountEnabled", "bool", default=False, create=True, update=True),
    Prop("ageGroup", "string", default=False, create=True, update=True),
    Prop("city", "string", default=False, create=True, update=True),
    Prop("companyName", "string", default=False, create=True, update=True),
    Prop("country", "string", default=False, create=True, update=True),
    Prop("createdDateTime", "datetime", default=False),
    Prop("creationType", "string", default=False),
    Prop("deletedDateTime", "datetime", default=False),
    Prop("department", "string", default=False, create=True, update=True),
    Prop("employeeId", "string", default=False, create=True, update=True),
    Prop("employeeType", "string", default=False, create=True, update=True),
    Prop("externalUserState", "string", default=False),
    Prop("faxNumber", "string", default=False, create=True, update=True),
    Prop("identities", "objects", default=False, create=True, update=True),
    Prop("imAddresses", "strings", default=False),
    Prop("mailNickname", "string", default=False, create=True, update=True, max_len=64),
    Prop("onPremisesImmutableId", "string", default=False, create=True, update=True),
    Prop("onPremisesSamAccountName", "string", default=False),
    Prop("onPremisesSyncEnabled", "bool", default=False),
    Prop("otherMails", "strings", default=False, create=True, update=True),
    Prop("passwordPolicies", "string", default=False, create=True, update=True),
    Prop("passwordProfile", "object", default=False, create=True, update=True, write_only=True),
    Prop("postalCode", "string", default=False, create=True, update=True),
    Prop("proxyAddresses", "strings", default=False),
    Prop("state", "string", default=False, create=True, update=True),
    Prop("streetAddress", "string", default=False, create=True, update=True),
    Prop("usageLocation", "string", default=False, create=True, update=True),
    Prop("userType", "string", default=False, create=True, update=True),
)

# Members of other types are held for membership; they are seeded, not created through the API.
DEVICE = _props(
    Prop("id", "string"),
    Prop("deletedDateTime", "datetime"),
    Prop("accountEnabled", "bool"),
    Prop("deviceId", "string"),
    Prop("displayName", "string"),
    Prop("operatingSystem", "string"),
    Prop("operatingSystemVersion", "string"),
)
SERVICE_PRINCIPAL = _props(
    Prop("id", "string"),
    Prop("deletedDateTime", "datetime"),
    Prop("accountEnabled", "bool"),
    Prop("appId", "string"),
    Prop("appDisplayName", "string"),
    Prop("displayName", "string"),
    Prop("servicePrincipalType", "string"),
)
ORG_CONTACT = _props(
    Prop("id", "string"),
    Prop("deletedDateTime", "datetime"),
    Prop("displayName", "string"),
    Prop("givenName", "string"),
    Prop("surname", "string"),
    Prop("mail", "string"),
    Prop("mailNickname", "string"),
    Prop("companyName", "string"),
    Prop("department", "string"),
    Prop("jobTitle", "string"),
)

SCHEMAS: dict[str, dict[str, Prop]] = {
    "user": USER,
    "group": GROUP,
    "device": DEVICE,
    "servicePrincipal": SERVICE_PRINCIPAL,
    "orgContact": ORG_CONTACT,
}

#: Graph's entity type name (for messages and @odata.type) and its entity set.
TYPE_NAMES = {
    "user": "microsoft.graph.user",
    "group": "microsoft.graph.group",
    "device": "microsoft.graph.device",
    "servicePrincipal": "microsoft.graph.servicePrincipal",
    "orgContact": "microsoft.graph.orgContact",
}
RESOURCE_NAMES = {"user": "User", "group": "Group", "device": "Device", "servicePrincipal": "ServicePrincipal", "orgContact": "OrgContact"}
ENTITY_SETS = {"user": "users", "group": "groups", "device": "devices", "servicePrincipal": "servicePrincipals", "orgContact": "contacts"}


def canonical(schema: dict[str, Prop], name: str) -> str | None:
    """Property names are case-insensitive on input (docs/behaviour.md#case-insensitive-names)."""
    if name in schema:
        return name
    low = name.lower()
    for key in schema:
        if key.lower() == low:
            return key
    return None


def check_value(prop: Prop, value: Any) -> bool:
    """Does ``value`` have the JSON type the property needs? (``null`` is allowed for nullable scalars)."""
    if value is None:
        return prop.kind not in ("bool",) or prop.name not in ("mailEnabled", "securityEnabled", "accountEnabled")
    k = prop.kind
    if k in ("string", "datetime"):
        return isinstance(value, str) and (prop.max_len is None or len(value) <= prop.max_len)
    if k == "bool":
        return isinstance(value, bool)
    if k == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if k == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if k == "object":
        return isinstance(value, dict)
    if k == "objects":
        return isinstance(value, list) and all(isinstance(v, dict) for v in value)
    return False  # pragma: no cover
