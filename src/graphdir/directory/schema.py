"""Graph's property sets for the directory types we hold.

Which properties exist, which are returned by default, which a client may
set on create or update, their JSON (and OData) types, the complex types they
use and the navigation properties graphdir serves. Everything that describes a
type is read from here: body validation, ``$select``, serialisation and the
CSDL ``$metadata`` document (:mod:`graphdir.odata.metadata`), so they cannot drift.

Sources: https://learn.microsoft.com/en-us/graph/api/resources/group,
https://learn.microsoft.com/en-us/graph/api/resources/user (and user-get, user-post-users,
group-post-groups, group-update); docs/behaviour.md for the choices made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["string", "bool", "strings", "datetime", "int", "object", "objects"]

VERSIONS = ("v1.0", "beta")


@dataclass(frozen=True)
class Prop:
    name: str
    kind: Kind
    default: bool = True  # returned without $select
    create: bool = False  # may be set on POST
    update: bool = False  # may be set on PATCH
    max_len: int | None = None
    write_only: bool = False  # never returned (passwordProfile)
    #: the complex type of an ``object``/``objects`` property (a key of :data:`COMPLEX_TYPES`)
    complex: str | None = None
    #: the API versions that have the property (``creationOptions`` exists on beta only)
    versions: tuple[str, ...] = VERSIONS


def _props(*items: Prop) -> dict[str, Prop]:
    return {p.name: p for p in items}


GROUP = _props(
    Prop("id", "string"),
    Prop("deletedDateTime", "datetime"),
    Prop("classification", "string", create=True, update=True),
    Prop("createdDateTime", "datetime"),
    Prop("creationOptions", "strings", default=False, create=True, versions=("beta",)),
    Prop("description", "string", create=True, update=True),
    Prop("displayName", "string", create=True, update=True, max_len=256),
    Prop("expirationDateTime", "datetime"),
    # groupTypes and mailEnabled: PATCH accepts them (group-update.md's own example sends both
    # unchanged); what may really change is decided in directory/groups.py (docs/behaviour.md).
    Prop("groupTypes", "strings", create=True, update=True),
    Prop("isAssignableToRole", "bool", create=True),
    Prop("mail", "string"),
    Prop("mailEnabled", "bool", create=True, update=True),
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
    Prop("onPremisesProvisioningErrors", "objects", complex="onPremisesProvisioningError"),
    Prop("serviceProvisioningErrors", "objects", default=False, complex="serviceProvisioningError"),
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
    # the userPrincipalName identity is derived from userPrincipalName (directory/users.py)
    Prop("identities", "objects", default=False, create=True, update=True, complex="objectIdentity"),
    Prop("imAddresses", "strings", default=False),
    Prop("mailNickname", "string", default=False, create=True, update=True, max_len=64),
    Prop("onPremisesImmutableId", "string", default=False, create=True, update=True),
    Prop("onPremisesSamAccountName", "string", default=False),
    Prop("onPremisesSyncEnabled", "bool", default=False),
    Prop("otherMails", "strings", default=False, create=True, update=True),
    Prop("passwordPolicies", "string", default=False, create=True, update=True),
    Prop("passwordProfile", "object", default=False, create=True, update=True, write_only=True, complex="passwordProfile"),
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


#: Complex types of ``object``/``objects`` properties (resources/objectidentity, passwordprofile,
#: onpremisesprovisioningerror, serviceprovisioningerror).
COMPLEX_TYPES: dict[str, dict[str, Prop]] = {
    "objectIdentity": _props(Prop("signInType", "string"), Prop("issuer", "string"), Prop("issuerAssignedId", "string")),
    "passwordProfile": _props(
        Prop("forceChangePasswordNextSignIn", "bool"), Prop("forceChangePasswordNextSignInWithMfa", "bool"), Prop("password", "string")
    ),
    "onPremisesProvisioningError": _props(
        Prop("category", "string"), Prop("occurredDateTime", "datetime"), Prop("propertyCausingError", "string"), Prop("value", "string")
    ),
    "serviceProvisioningError": _props(Prop("createdDateTime", "datetime"), Prop("isResolved", "bool"), Prop("serviceInstance", "string")),
}

#: Navigation properties graphdir serves (each a collection of directoryObject): the
#: relationships of resources/group and resources/user this service has routes for.
NAVIGATION: dict[str, tuple[str, ...]] = {
    "group": ("members", "owners", "memberOf", "transitiveMembers", "transitiveMemberOf"),
    "user": ("memberOf", "transitiveMemberOf"),
}

#: Graph's other navigation properties of these types (v1.0 and beta), which graphdir does not
#: serve: ``$expand`` names them as known relationships (ExpandNotSupported), not as unknown
#: properties (docs/behaviour.md, "Queries").
OTHER_NAVIGATION: dict[str, frozenset[str]] = {
    "user": frozenset(
        "activities agreementAcceptances appRoleAssignments authentication calendar calendarGroups calendars calendarView "
        "chats contactFolders contacts createdObjects directReports drive drives employeeExperience events extensions "
        "followedSites inferenceClassification insights joinedGroups joinedTeams licenseDetails mailFolders "
        "managedAppRegistrations managedDevices manager messages oauth2PermissionGrants onenote onlineMeetings outlook "
        "ownedDevices ownedObjects people permissionGrants photo photos planner presence registeredDevices "
        "scopedRoleMemberOf settings solutions sponsors teamwork todo transitiveReports".split()
    ),
    "group": frozenset(
        "acceptedSenders appRoleAssignments calendar calendarView conversations createdOnBehalfOf drive drives endpoints "
        "events extensions groupLifecyclePolicies membersWithLicenseErrors onenote permissionGrants photo photos planner "
        "rejectedSenders settings sites team threads".split()
    ),
    "device": frozenset("commands extensions memberOf registeredOwners registeredUsers transitiveMemberOf usageRights".split()),
    "servicePrincipal": frozenset(
        "appRoleAssignedTo appRoleAssignments claimsMappingPolicies createdObjects delegatedPermissionClassifications endpoints "
        "federatedIdentityCredentials homeRealmDiscoveryPolicies memberOf oauth2PermissionGrants ownedObjects owners "
        "tokenIssuancePolicies tokenLifetimePolicies transitiveMemberOf".split()
    ),
    "orgContact": frozenset("directReports manager memberOf transitiveMemberOf".split()),
}


def in_version(prop: Prop, version: str) -> bool:
    """Does the property exist on this API version? (``v1.0`` or ``beta``)."""
    return version in prop.versions


def canonical(schema: dict[str, Prop], name: str, version: str | None = None) -> str | None:
    """Property names are case-insensitive on input (docs/behaviour.md#case-insensitive-names); with ``version``,
    a property that version does not have is not found."""
    found = name if name in schema else None
    if found is None:
        low = name.lower()
        found = next((key for key in schema if key.lower() == low), None)
    if found is not None and version is not None and version not in schema[found].versions:
        return None
    return found


#: Characters Graph's directory refuses in string values: everything that is not an XML 1.0
#: character (C0 controls but tab, line feed and carriage return; surrogates; U+FFFE, U+FFFF).
#: Directory strings travel in XML (the CSDL world, Exchange, AD), so a value with ``\u0000`` can be
#: neither stored faithfully nor returned (docs/behaviour.md, "Groups and users").
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean_string(value: str) -> bool:
    """True when ``value`` holds only characters a directory string may hold."""
    return _NOT_XML_CHAR.search(value) is None


def check_value(prop: Prop, value: Any) -> bool:
    """Does ``value`` have the JSON type the property needs? (``null`` is allowed for nullable scalars).

    Strings (also inside lists and complex values) must be clean (:func:`clean_string`); a
    complex value may hold only its type's properties, each of the right type.
    """
    if value is None:
        return prop.kind not in ("bool",) or prop.name not in ("mailEnabled", "securityEnabled", "accountEnabled")
    k = prop.kind
    if k in ("string", "datetime"):
        return isinstance(value, str) and (prop.max_len is None or len(value) <= prop.max_len) and clean_string(value)
    if k == "bool":
        return isinstance(value, bool)
    if k == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if k == "strings":
        return isinstance(value, list) and all(isinstance(v, str) and clean_string(v) for v in value)
    if k == "object":
        return _check_complex(prop, value)
    if k == "objects":
        return isinstance(value, list) and all(_check_complex(prop, v) for v in value)
    return False  # pragma: no cover


def _check_complex(prop: Prop, value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    fields = COMPLEX_TYPES[prop.complex] if prop.complex else {}
    for key, item in value.items():
        name = canonical(fields, key)
        if name is None or not check_value(fields[name], item):
            return False
    return True
