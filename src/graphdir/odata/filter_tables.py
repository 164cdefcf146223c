"""Graph's ``$filter`` support tables per resource (filter-directory-objects.md excerpt).

For each property: its value kind and whether ``eq``, ``startsWith``, ``ge/le`` and
``eq null`` work by default (D), only with advanced query parameters (A) or not at all (-).
Used by :mod:`graphdir.odata.filter` and :mod:`graphdir.odata.search`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_FILTER_LENGTH = 2048
MAX_DEPTH = 48

Kind = Literal["string", "guid", "bool", "datetime", "strings"]
Support = Literal["D", "A", "-"]  # Default, Advanced only, not supported


@dataclass(frozen=True)
class FilterProp:
    """One row of the filter table: Graph name, value kind and support per operator column."""

    name: str
    kind: Kind
    eq: Support
    starts: Support
    range: Support
    null: Support
    ends: Support = "-"


# endsWith: advanced queries only, on these properties only (aad-advanced-queries.md).
_ENDS_WITH = frozenset({"mail", "otherMails", "userPrincipalName", "proxyAddresses"})


def _table(rows: str) -> dict[str, FilterProp]:
    """Build a table from ``name kind eq/startsWith/geLe/eqNull`` lines (D, A or -)."""
    out: dict[str, FilterProp] = {}
    for line in rows.strip().splitlines():
        name, kind, code = line.split()
        c: list[Support] = [ch if ch in ("D", "A") else "-" for ch in code]  # type: ignore[misc]
        ends: Support = "A" if name in _ENDS_WITH else "-"
        out[name.lower()] = FilterProp(name, kind, c[0], c[1], c[2], c[3], ends)  # type: ignore[arg-type]
    return out


_GROUP = _table("""
id guid D---
classification string DD--
createdByAppId guid D---
description string AA-A
displayName string DD-A
expirationDateTime datetime A-A-
groupTypes strings D---
hasMembersWithLicenseErrors bool D--D
infoCatalogs strings DD--
isAssignableToRole bool D---
mail string DD-A
mailEnabled bool D---
mailNickname string DD-A
membershipRule string DD--
membershipRuleProcessingState string D---
onPremisesLastSyncDateTime datetime D-D-
onPremisesSamAccountName string AA--
onPremisesSecurityIdentifier string D--A
onPremisesSyncEnabled bool D--A
preferredLanguage string AA-A
proxyAddresses strings DD--
renewedDateTime datetime D-D-
resourceBehaviorOptions strings D---
resourceProvisioningOptions strings D---
securityEnabled bool D---
uniqueName string DD--
""")

_USER = _table("""
id guid D---
accountEnabled bool D---
ageGroup string D---
businessPhones strings AA--
certificateUserIds strings A---
city string DD-A
companyName string AA-A
consentProvidedForMinor string D---
country string DD-A
createdDateTime datetime D-DA
creationType string D---
department string DD-A
displayName string DD-A
employeeHireDate datetime A-A-
employeeId string D--A
employeeType string A---
externalUserState string D---
faxNumber string AA-A
givenName string DD-A
imAddresses strings DD--
infoCatalogs strings DD--
isLicenseReconciliationNeeded bool D---
isResourceAccount bool D---
jobTitle string DD-A
mail string DD-A
mailNickname string DD-A
mobilePhone string AA-A
officeLocation string AA-A
onPremisesImmutableId string D---
onPremisesLastSyncDateTime datetime D-D-
onPremisesSamAccountName string AA--
onPremisesSecurityIdentifier string D--A
onPremisesSyncEnabled bool D--A
otherMails strings DD--
passwordPolicies string ---A
postalCode string AA-A
preferredLanguage string AA-A
proxyAddresses strings DD--
showInAddressList bool A---
state string D--A
streetAddress string AA-A
surname string DD-A
usageLocation string DD-A
userPrincipalName string DD--
userType string D--A
""" + "\n".join(f"onPremisesExtensionAttributes/extensionAttribute{i} string A--A" for i in range(1, 16)))

_ORG_CONTACT = _table("""
id guid D---
companyName string AA-A
department string DD-A
displayName string DD-A
givenName string DD-A
jobTitle string DD-A
mail string DD-A
mailNickname string DD-A
onPremisesLastSyncDateTime datetime D-D-
onPremisesSyncEnabled bool D--A
proxyAddresses strings DD--
surname string DD-A
""")

# [INF] The excerpt omits devices and service principals; rows follow the current docs.
_DEVICE = _table("""
id guid D---
accountEnabled bool D---
approximateLastSignInDateTime datetime D-D-
deviceId guid D---
displayName string DD-A
isCompliant bool D---
isManaged bool D---
manufacturer string AA-A
model string AA-A
onPremisesLastSyncDateTime datetime D-D-
onPremisesSyncEnabled bool D--A
operatingSystem string DD-A
operatingSystemVersion string DD-A
physicalIds strings D---
profileType string D---
registrationDateTime datetime A-A-
trustType string D---
""")

_SERVICE_PRINCIPAL = _table("""
id guid D---
accountEnabled bool D---
alternativeNames strings DD--
appId guid D---
appOwnerOrganizationId guid D---
displayName string DD-A
servicePrincipalNames strings DD--
servicePrincipalType string D---
tags strings DD--
""")


def _best(a: Support, b: Support) -> Support:
    return "D" if "D" in (a, b) else "A" if "A" in (a, b) else "-"


def _union(*tables: dict[str, FilterProp]) -> dict[str, FilterProp]:
    """Merge tables cell by cell, keeping the more permissive support (directoryObject rule)."""
    out: dict[str, FilterProp] = {}
    for table in tables:
        for key, p in table.items():
            q = out.get(key)
            out[key] = p if q is None else FilterProp(
                q.name, q.kind, _best(q.eq, p.eq), _best(q.starts, p.starts),
                _best(q.range, p.range), _best(q.null, p.null), _best(q.ends, p.ends),
            )
    return out


FILTER_TABLES: dict[str, dict[str, FilterProp]] = {
    "user": _USER,
    "group": _GROUP,
    "orgContact": _ORG_CONTACT,
    "device": _DEVICE,
    "servicePrincipal": _SERVICE_PRINCIPAL,
    "directoryObject": _union(_USER, _GROUP),
}

RESOURCE_NAMES = {
    "user": "User",
    "group": "Group",
    "orgContact": "OrgContact",
    "device": "Device",
    "servicePrincipal": "ServicePrincipal",
    "directoryObject": "DirectoryObject",
}

_SEARCH_USER = ("displayName", "mail", "userPrincipalName", "givenName", "surname")
_SEARCH_GROUP = ("displayName", "description", "mail", "mailNickname")
SEARCHABLE: dict[str, tuple[str, ...]] = {
    "user": _SEARCH_USER,
    "group": _SEARCH_GROUP,
    "orgContact": ("displayName", "mail", "givenName", "surname"),
    "device": ("displayName",),
    "servicePrincipal": ("displayName", "description"),
    "directoryObject": tuple(dict.fromkeys(_SEARCH_GROUP + _SEARCH_USER)),
}
