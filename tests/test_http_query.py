"""OData query options over HTTP: $select, $top, paging, $count, $filter, $orderby, $search, $skip, $skiptoken (docs/behaviour.md#queries)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from http_helpers import (
    BASE_URL,
    DOMAIN,
    EVENTUAL,
    MSG_ADVANCED,
    MSG_COUNT,
    MSG_SEARCH,
    MSG_UNSUPPORTED_FILTER,
    Api,
    assert_error,
    assert_no_content,
    assert_odata_json,
    ctx,
)

pytestmark = pytest.mark.anyio

MSG_SKIPTOKEN = "Invalid skip token: the $skiptoken value is not valid for this request."
MSG_REL_FILTER = "The specified filter to the reference property query is currently not supported."
MSG_SORT = "Sorting not supported for current query."
ADVANCED = {"$count": "true"}


def page_size_error(n: int) -> str:
    return f"Invalid page size specified: '{n}'. Must be between 1 and 999 inclusive."


async def pages(api: Api, path: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every page of a listing, following ``@odata.nextLink`` verbatim (and checking it is absolute, on our origin)."""
    out: list[dict[str, Any]] = []
    resp = await api.get(path, params=params, headers=headers)
    while True:
        body = assert_odata_json(resp)
        out.append(body)
        link = body.get("@odata.nextLink")
        if not link:
            return out
        assert link.startswith(f"{BASE_URL}/"), link
        assert "$skiptoken=" in link
        resp = await api.get(link, headers=headers)


def names(body: dict[str, Any]) -> list[str]:
    return [i["displayName"] for i in body["value"]]


async def make_groups(api: Api, *display_names: str, kind: str = "security") -> list[dict[str, Any]]:
    return [await api.create_group(n, kind=kind) for n in display_names]


# -- $select ------------------------------------------------------------------------------------
async def test_select_on_collections(api: Api) -> None:
    await make_groups(api, "One", "Two")
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$select": "id,displayName"}))
    assert body["@odata.context"] == ctx("v1.0", "groups(id,displayName)")
    assert all(set(g) == {"id", "displayName"} for g in body["value"])
    body = assert_odata_json(await api.get("/beta/groups", params={"$select": "displayName"}))
    assert body["@odata.context"] == ctx("beta", "groups(displayName)")
    assert sorted(names(body)) == ["One", "Two"]
    users = assert_odata_json(await api.get("/v1.0/users", params={"$select": "accountEnabled,UserPrincipalName"}))
    assert users["@odata.context"] == ctx("v1.0", "users(accountEnabled,userPrincipalName)")


async def test_select_on_polymorphic_members(api: Api) -> None:
    group = await api.create_group()
    user = await api.create_user("Member U")
    nested = await api.create_group("Member G")
    for oid in (user["id"], nested["id"]):
        assert_no_content(await api.add_member(group["id"], oid))
    body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}/members", params={"$select": "id,displayName"}))
    assert body["@odata.context"] == ctx("v1.0", "directoryObjects(id,displayName)")
    assert sorted(body["value"], key=lambda i: i["displayName"]) == [
        {"@odata.type": "#microsoft.graph.group", "id": nested["id"], "displayName": "Member G"},
        {"@odata.type": "#microsoft.graph.user", "id": user["id"], "displayName": "Member U"},
    ]


async def test_select_unknown_property(api: Api) -> None:
    assert_error(
        await api.get("/v1.0/groups", params={"$select": "id,shoeSize"}),
        400,
        "BadRequest",
        "Could not find a property named 'shoeSize' on type 'microsoft.graph.group'.",
    )


# -- $top and paging ----------------------------------------------------------------------------
async def test_top_default_100_and_paging_users(api: Api) -> None:
    ids = api.bulk_users(250)
    result = await pages(api, "/v1.0/users")
    assert [len(p["value"]) for p in result] == [100, 100, 50]
    got = [u["id"] for p in result for u in p["value"]]
    assert len(got) == len(set(got)) == 250 and set(got) == set(ids)
    for p in result:
        assert p["@odata.context"] == ctx("v1.0", "users")


async def test_top_max_999_and_1000(api: Api) -> None:
    api.bulk_users(120)
    body = assert_odata_json(await api.get("/v1.0/users", params={"$top": "999"}))
    assert len(body["value"]) == 120 and "@odata.nextLink" not in body
    for bad in (1000, 0):
        assert_error(await api.get("/v1.0/users", params={"$top": str(bad)}), 400, "Request_BadRequest", page_size_error(bad))
    group = await api.create_group()
    assert_error(await api.get(f"/v1.0/groups/{group['id']}/members", params={"$top": "1000"}), 400, "Request_BadRequest", page_size_error(1000))
    for bad_value in ("ten", "-5"):  # a negative $top is the OData parser's error, not the page size's
        assert_error(
            await api.get("/v1.0/users", params={"$top": bad_value}),
            400,
            "BadRequest",
            f"Invalid value '{bad_value}' for $top query option found. The $top query option requires a non-negative integer value.",
        )


async def test_top_over_max_cap_setting(make_api) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(top_over_max="cap")
    api.bulk_users(5)
    body = assert_odata_json(await api.get("/v1.0/users", params={"$top": "5000"}))
    assert len(body["value"]) == 5


async def test_next_link_keeps_options_and_is_absolute(api: Api) -> None:
    api.bulk_users(150)
    params = {"$filter": "startsWith(displayName,'bulk001')", "$select": "id,displayName", "$top": "15"}
    result = await pages(api, "/v1.0/users", params=params)
    assert [len(p["value"]) for p in result] == [15, 15, 15, 5]
    assert sorted(n for p in result for n in names(p)) == [f"bulk{i:05d}" for i in range(100, 150)]
    for p in result:
        assert p["@odata.context"] == ctx("v1.0", "users(id,displayName)")
        assert all(set(u) == {"id", "displayName"} for u in p["value"])
    link = result[0]["@odata.nextLink"]
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == BASE_URL and parts.path == "/v1.0/users"
    query = parse_qs(parts.query)
    assert query["$filter"] == ["startsWith(displayName,'bulk001')"]
    assert query["$select"] == ["id,displayName"] and query["$top"] == ["15"]
    assert len(query["$skiptoken"]) == 1


async def test_next_link_on_the_request_origin(api: Api) -> None:
    api.bulk_users(3)
    for origin in ("http://other.example:9000", "https://graph.local"):
        body = assert_odata_json(await api.get(f"{origin}/beta/users", params={"$top": "2"}))
        assert body["@odata.nextLink"].startswith(f"{origin}/beta/users?")
        assert body["@odata.context"] == f"{origin}/beta/$metadata#users"
        nxt = assert_odata_json(await api.get(body["@odata.nextLink"]))
        assert len(nxt["value"]) == 1 and "@odata.nextLink" not in nxt


async def test_public_base_url_in_next_link(make_api) -> None:  # type: ignore[no-untyped-def]
    api: Api = make_api(public_base_url="https://graph.example.test:8443")
    api.bulk_users(3)
    body = assert_odata_json(await api.get("/v1.0/users", params={"$top": "2"}))
    link = body["@odata.nextLink"]
    assert link.startswith("https://graph.example.test:8443/v1.0/users?")
    # the client reaches the server through another address: follow the path and query
    parts = urlsplit(link)
    nxt = assert_odata_json(await api.get(f"{parts.path}?{parts.query}"))
    assert len(nxt["value"]) == 1


@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_members_paging(api: Api, version: str) -> None:
    group = await api.create_group()
    ids = api.bulk_users(230)
    api.bulk_members(group["id"], ids)
    result = await pages(api, f"/{version}/groups/{group['id']}/members")
    assert [len(p["value"]) for p in result] == [100, 100, 30]
    got = [m["id"] for p in result for m in p["value"]]
    assert sorted(got) == sorted(ids)
    assert all(m["@odata.type"] == "#microsoft.graph.user" for p in result for m in p["value"])
    refs = await pages(api, f"/{version}/groups/{group['id']}/members/$ref", params={"$top": "150"})
    assert [len(p["value"]) for p in refs] == [150, 80]
    assert {r["@odata.id"].rsplit("/", 1)[1] for p in refs for r in p["value"]} == set(ids)
    assert refs[0]["@odata.nextLink"].startswith(f"{BASE_URL}/{version}/groups/{group['id']}/members/$ref?")
    casts = await pages(api, f"/{version}/groups/{group['id']}/members/microsoft.graph.user", params={"$top": "120"})
    assert [len(p["value"]) for p in casts] == [120, 110]


async def test_user_member_of_paging(api: Api) -> None:
    user = await api.create_user()
    groups = await make_groups(api, *[f"G{i:02d}" for i in range(7)])
    for g in groups:
        assert_no_content(await api.add_member(g["id"], user["id"]))
    result = await pages(api, f"/v1.0/users/{user['id']}/memberOf", params={"$top": "3"})
    assert [len(p["value"]) for p in result] == [3, 3, 1]
    assert sorted(g["id"] for p in result for g in p["value"]) == sorted(g["id"] for g in groups)


async def test_empty_collection(api: Api) -> None:
    body = assert_odata_json(await api.get("/v1.0/groups"))
    assert body == {"@odata.context": ctx("v1.0", "groups"), "value": []}


# -- $count -------------------------------------------------------------------------------------
async def test_count_true_with_consistency_level_first_page_only(api: Api) -> None:
    api.bulk_users(250)
    result = await pages(api, "/v1.0/users", params={"$count": "true"}, headers=EVENTUAL)
    assert result[0]["@odata.count"] == 250
    assert [len(p["value"]) for p in result] == [100, 100, 50]
    assert all("@odata.count" not in p for p in result[1:])
    assert "$count=true" in result[0]["@odata.nextLink"]


async def test_count_true_without_consistency_level_ignored(api: Api) -> None:
    api.bulk_users(3)
    body = assert_odata_json(await api.get("/v1.0/users", params={"$count": "true"}))
    assert "@odata.count" not in body and len(body["value"]) == 3
    group = await api.create_group()
    body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}/members", params={"$count": "true"}))
    assert "@odata.count" not in body


async def test_count_true_on_members(api: Api) -> None:
    group = await api.create_group()
    api.bulk_members(group["id"], api.bulk_users(12))
    body = assert_odata_json(await api.get(f"/v1.0/groups/{group['id']}/members", params={"$count": "true", "$top": "5"}, headers=EVENTUAL))
    assert body["@odata.count"] == 12 and len(body["value"]) == 5
    # the SDK does not re-send ConsistencyLevel on the next page: still a valid page
    nxt = assert_odata_json(await api.get(body["@odata.nextLink"]))
    assert len(nxt["value"]) == 5 and "@odata.count" not in nxt


async def test_count_false_and_invalid(api: Api) -> None:
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$count": "false"}, headers=EVENTUAL))
    assert "@odata.count" not in body
    assert_error(
        await api.get("/v1.0/groups", params={"$count": "yes"}),
        400,
        "BadRequest",
        "Invalid value 'yes' for $count query option found. Valid values are 'true' and 'false'.",
    )


@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_count_segments(api: Api, version: str) -> None:
    api.bulk_users(4)
    await make_groups(api, "S1", "S2")
    await make_groups(api, "U1", kind="unified")
    for path, expected in (("users/$count", "4"), ("groups/$count", "3")):
        assert_error(await api.get(f"/{version}/{path}"), 400, "Request_BadRequest", MSG_COUNT)
        resp = await api.get(f"/{version}/{path}", headers={"consistencylevel": "eventual"})
        assert resp.status_code == 200 and resp.text == expected
        assert resp.headers["content-type"].startswith("text/plain")
        assert resp.headers["OData-Version"] == "4.0"
    resp = await api.get(f"/{version}/groups/$count", params={"$filter": "groupTypes/any(c:c eq 'Unified')"}, headers=EVENTUAL)
    assert resp.text == "1"
    resp = await api.get(f"/{version}/users/$count", params={"$search": '"displayName:bulk00003"'}, headers=EVENTUAL)
    assert resp.text == "1"


# -- $filter ------------------------------------------------------------------------------------
async def test_filter_default_operators_on_groups(api: Api) -> None:
    await make_groups(api, "Video Production", "Video Games", "Sales")
    await make_groups(api, "Marketing", kind="unified")

    async def filtered(expr: str, **kw: Any) -> list[str]:
        body = assert_odata_json(await api.get("/v1.0/groups", params={"$filter": expr}, **kw))
        return sorted(names(body))

    assert await filtered("displayName eq 'Sales'") == ["Sales"]
    assert await filtered("displayName eq 'sales'") == ["Sales"]  # case-insensitive like Entra
    assert await filtered("startswith(displayName,'Video')") == ["Video Games", "Video Production"]
    assert await filtered("startsWith(displayName, 'vid')") == ["Video Games", "Video Production"]
    assert await filtered("displayName in ('Sales', 'Marketing')") == ["Marketing", "Sales"]
    assert await filtered("groupTypes/any(c:c eq 'Unified')") == ["Marketing"]
    assert await filtered("mailEnabled eq true") == ["Marketing"]
    assert await filtered("securityEnabled eq true and startswith(displayName,'Video')") == ["Video Games", "Video Production"]
    assert await filtered("displayName eq 'Sales' or displayName eq 'Marketing'") == ["Marketing", "Sales"]


async def test_filter_users(api: Api) -> None:
    api.bulk_users(5)
    special = await api.create_user("Adele Vance")
    body = assert_odata_json(await api.get("/v1.0/users", params={"$filter": f"userPrincipalName eq '{special['userPrincipalName']}'"}))
    assert [u["id"] for u in body["value"]] == [special["id"]]
    body = assert_odata_json(await api.get("/v1.0/users", params={"$filter": f"id eq '{special['id']}'"}))
    assert [u["id"] for u in body["value"]] == [special["id"]]


@pytest.mark.parametrize(
    ("expr", "op"),
    [
        ("displayName ne 'Sales'", "ne"),
        ("not(displayName eq 'Sales')", "not"),
        ("endswith(mail,'@contoso.onmicrosoft.com')", "endsWith"),
    ],
)
async def test_advanced_operators_need_header_and_count(api: Api, expr: str, op: str) -> None:
    await make_groups(api, "Sales", "Video")
    await make_groups(api, "Marketing", kind="unified")
    assert_error(await api.get("/v1.0/groups", params={"$filter": expr}), 400, "Request_UnsupportedQuery", MSG_ADVANCED.format(op))
    # the header alone is not enough, nor $count=true alone
    assert_error(await api.get("/v1.0/groups", params={"$filter": expr}, headers=EVENTUAL), 400, "Request_UnsupportedQuery", MSG_ADVANCED.format(op))
    assert_error(await api.get("/v1.0/groups", params={"$filter": expr, "$count": "true"}), 400, "Request_UnsupportedQuery", MSG_ADVANCED.format(op))
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$filter": expr, **ADVANCED}, headers=EVENTUAL))
    expected = {"ne": ["Marketing", "Video"], "not": ["Marketing", "Video"], "endsWith": ["Marketing"]}[op]
    assert sorted(names(body)) == expected
    assert body["@odata.count"] == len(expected)


async def test_endswith_on_users_upn_advanced(api: Api) -> None:
    api.bulk_users(3)
    expr = f"endswith(userPrincipalName,'@{DOMAIN}')"
    assert_error(await api.get("/v1.0/users", params={"$filter": expr}), 400, "Request_UnsupportedQuery", MSG_ADVANCED.format("endsWith"))
    body = assert_odata_json(await api.get("/v1.0/users", params={"$filter": expr, **ADVANCED}, headers=EVENTUAL))
    assert body["@odata.count"] == 3


async def test_filter_unsupported_property(api: Api) -> None:
    await make_groups(api, "X")
    assert_error(
        await api.get("/v1.0/groups", params={"$filter": "createdDateTime ge 2020-01-01T00:00:00Z"}),
        400,
        "Request_UnsupportedQuery",
        MSG_UNSUPPORTED_FILTER.format("createdDateTime", "Group"),
    )
    # an advanced-only cell (description) used in default mode
    assert_error(
        await api.get("/v1.0/groups", params={"$filter": "description eq 'x'"}),
        400,
        "Request_UnsupportedQuery",
        MSG_UNSUPPORTED_FILTER.format("description", "Group"),
    )
    assert_error(
        await api.get("/v1.0/groups", params={"$filter": "shoeSize eq 'x'"}),
        400,
        "Request_UnsupportedQuery",
        MSG_UNSUPPORTED_FILTER.format("shoeSize", "Group"),
    )
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$filter": "description eq 'x'", **ADVANCED}, headers=EVENTUAL))
    assert body["value"] == [] and body["@odata.count"] == 0


async def test_filter_syntax_error(api: Api) -> None:
    resp = await api.get("/v1.0/groups", params={"$filter": "displayName eq"})
    err = assert_error(resp, 400, "BadRequest")
    assert err["message"].startswith("Invalid filter clause: ")


async def test_a_nul_character_in_a_query_or_a_key_is_refused_alike_on_every_backend(api: Api) -> None:
    """No directory string holds a NUL (bodies refuse it), so a ``$filter``/``$search`` value with one is
    a 400 and a userPrincipalName key with one names nobody (404), whatever the database."""
    resp = await api.get("/v1.0/groups", params={"$filter": "displayName eq 'a\x00b'"})
    assert_error(resp, 400, "BadRequest", "Invalid filter clause: The filter expression holds a NUL character.")
    resp = await api.get("/v1.0/groups", params={"$search": '"displayName:a\x00b"'}, headers=EVENTUAL)
    assert resp.status_code == 400, resp.text
    resp = await api.get("/v1.0/users/a%00b@contoso.onmicrosoft.com")
    assert_error(resp, 404, "Request_ResourceNotFound")


async def test_filter_on_members_needs_advanced(api: Api) -> None:
    group = await api.create_group()
    alpha = await api.create_user("Alpha One")
    beta = await api.create_user("Beta Two")
    for u in (alpha, beta):
        assert_no_content(await api.add_member(group["id"], u["id"]))
    path = f"/v1.0/groups/{group['id']}/members"
    params = {"$filter": "startswith(displayName,'Al')"}
    assert_error(await api.get(path, params=params), 400, "Request_UnsupportedQuery", MSG_REL_FILTER)
    body = assert_odata_json(await api.get(path, params={**params, **ADVANCED}, headers=EVENTUAL))
    assert [m["id"] for m in body["value"]] == [alpha["id"]] and body["@odata.count"] == 1
    assert body["value"][0]["@odata.type"] == "#microsoft.graph.user"


# -- $orderby -----------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["", " asc", " desc"])
async def test_orderby_display_name_paging(api: Api, direction: str) -> None:
    api.bulk_users(95, prefix="u")
    result = await pages(api, "/v1.0/users", params={"$orderby": f"displayName{direction}", "$top": "40"})
    assert [len(p["value"]) for p in result] == [40, 40, 15]
    got = [n for p in result for n in names(p)]
    expected = sorted(f"u{i:05d}" for i in range(95))
    assert got == (expected[::-1] if direction == " desc" else expected)


async def test_orderby_groups_case_insensitive_and_ties(api: Api) -> None:
    await make_groups(api, "beta", "Alpha", "alpha", "Gamma", "Alpha")
    result = await pages(api, "/v1.0/groups", params={"$orderby": "DisplayName", "$top": "2"})
    got = [n for p in result for n in names(p)]
    assert [n.lower() for n in got] == ["alpha", "alpha", "alpha", "beta", "gamma"]
    ids = [g["id"] for p in result for g in p["value"]]
    assert len(set(ids)) == 5


async def test_orderby_errors(api: Api) -> None:
    group = await api.create_group()
    assert_error(
        await api.get("/v1.0/groups", params={"$orderby": "createdDateTime"}), 400, "Request_UnsupportedQuery", "Order by 'createdDateTime' is not supported."
    )
    assert_error(
        await api.get("/v1.0/groups", params={"$orderby": "displayName sideways"}),
        400,
        "Request_UnsupportedQuery",
        "Order by 'displayName sideways' is not supported.",
    )
    # $filter + $orderby and $orderby on relationships need the advanced parameters
    params = {"$orderby": "displayName", "$filter": "startswith(displayName,'a')"}
    assert_error(await api.get("/v1.0/groups", params=params), 400, "Request_UnsupportedQuery", MSG_SORT)
    assert (await api.get("/v1.0/groups", params={**params, **ADVANCED}, headers=EVENTUAL)).status_code == 200
    members = f"/v1.0/groups/{group['id']}/members"
    assert_error(await api.get(members, params={"$orderby": "displayName"}), 400, "Request_UnsupportedQuery", MSG_SORT)
    assert (await api.get(members, params={"$orderby": "displayName", **ADVANCED}, headers=EVENTUAL)).status_code == 200


async def test_orderby_members_advanced_paging(api: Api) -> None:
    group = await api.create_group()
    api.bulk_members(group["id"], api.bulk_users(25, prefix="m"))
    result = await pages(api, f"/v1.0/groups/{group['id']}/members", params={"$orderby": "displayName desc", "$top": "10", **ADVANCED}, headers=EVENTUAL)
    assert result[0]["@odata.count"] == 25
    assert [n for p in result for n in names(p)] == sorted((f"m{i:05d}" for i in range(25)), reverse=True)


# -- $search ------------------------------------------------------------------------------------
async def test_search(api: Api) -> None:
    await make_groups(api, "Video Production", "Sales Video", "Marketing")
    params = {"$search": '"displayName:Video"'}
    assert_error(await api.get("/v1.0/groups", params=params), 400, "Request_UnsupportedQuery", MSG_SEARCH)
    body = assert_odata_json(await api.get("/v1.0/groups", params=params, headers=EVENTUAL))
    assert sorted(names(body)) == ["Sales Video", "Video Production"]
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$search": '"displayName:Prod" OR "displayName:Mark"'}, headers=EVENTUAL))
    assert sorted(names(body)) == ["Marketing", "Video Production"]
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$search": '"displayName:vid"', **ADVANCED}, headers=EVENTUAL))
    assert body["@odata.count"] == 2


async def test_search_members(api: Api) -> None:
    group = await api.create_group()
    price = await api.create_user("Joseph Price")
    preston = await api.create_user("Preston Morales")
    other = await api.create_user("Adele Vance")
    for u in (price, preston, other):
        assert_no_content(await api.add_member(group["id"], u["id"]))
    path = f"/v1.0/groups/{group['id']}/members/microsoft.graph.user"
    params = {"$count": "true", "$orderby": "displayName", "$search": '"displayName:Pr"', "$select": "displayName,id"}
    assert_error(await api.get(path, params=params), 400, "Request_UnsupportedQuery", MSG_SEARCH)
    body = assert_odata_json(await api.get(path, params=params, headers=EVENTUAL))
    assert body["@odata.context"] == ctx("v1.0", "users(displayName,id)")
    assert body["@odata.count"] == 2
    assert names(body) == ["Joseph Price", "Preston Morales"]


async def test_search_invalid(api: Api) -> None:
    err = assert_error(await api.get("/v1.0/groups", params={"$search": "Video"}, headers=EVENTUAL), 400, "Request_UnsupportedQuery")
    assert err["message"].startswith("Invalid $search clause: ")


# -- $skip, $skiptoken, unknown options ---------------------------------------------------------
async def test_skip_not_supported(api: Api) -> None:
    for path in ("/v1.0/groups", "/v1.0/users", "/beta/groups"):
        assert_error(await api.get(path, params={"$skip": "10"}), 400, "Request_BadRequest", "'$skip' is not supported by the service.")


async def test_bad_skiptoken(api: Api) -> None:
    api.bulk_users(3)
    for token in ("garbage", "eyJhIjogMX0", "", "%%%"):
        assert_error(await api.get(f"/v1.0/users?$skiptoken={token}"), 400, "Request_BadRequest", MSG_SKIPTOKEN)
    # a token minted for one ordering is refused for another
    first = assert_odata_json(await api.get("/v1.0/users", params={"$top": "1", "$orderby": "displayName"}))
    token = parse_qs(urlsplit(first["@odata.nextLink"]).query)["$skiptoken"][0]
    assert_error(await api.get("/v1.0/users", params={"$top": "1", "$skiptoken": token}), 400, "Request_BadRequest", MSG_SKIPTOKEN)


async def test_unknown_and_repeated_options(api: Api) -> None:
    assert_error(await api.get("/v1.0/groups?$frobnicate=1"), 400, "BadRequest", "Query option '$frobnicate' is not supported.")
    assert_error(
        await api.get("/v1.0/groups?$top=1&$top=2"),
        400,
        "BadRequest",
        "Query option '$top' was specified more than once, but it must be specified at most once.",
    )
    # options that are not system options are ignored
    assert (await api.get("/v1.0/groups?foo=bar")).status_code == 200


async def test_options_without_dollar_on_beta(api: Api) -> None:
    """On beta the ``$`` prefix is optional (query-parameters.md)."""
    api.bulk_users(3)
    body = assert_odata_json(await api.get("/beta/users?top=2&select=id"))
    assert len(body["value"]) == 2 and all(set(u) == {"id"} for u in body["value"])
    assert body["@odata.context"] == ctx("beta", "users(id)")
    assert "$top=2" in body["@odata.nextLink"]


async def test_single_entity_rejects_collection_options(api: Api) -> None:
    user = await api.create_user()
    assert_error(
        await api.get(f"/v1.0/users/{user['id']}", params={"$filter": "displayName eq 'x'"}),
        400,
        "BadRequest",
        "Query option '$filter' is not allowed on a single entity.",
    )


async def test_encoded_query_values(api: Api) -> None:
    await make_groups(api, "Let's go", "R&D")
    body = assert_odata_json(await api.get("/v1.0/groups", params={"$filter": "displayName eq 'Let''s go'"}))
    assert names(body) == ["Let's go"]
    resp = await api.client.get("/v1.0/groups?$filter=displayName%20eq%20%27R%26D%27", headers={"Authorization": f"Bearer {api.default_token}"})
    assert isinstance(resp, httpx.Response) and names(resp.json()) == ["R&D"]
