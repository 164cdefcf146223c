"""A 1,000,000-member group is handled: pages of 999 from the start, deep inside and at the end.

Membership is one row per edge and pages are keyset-based, so any page is one
index range scan (speed is measured in bench/, not asserted here).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from graphdir.auth.tokens import mint
from graphdir.odata.options import encode_skiptoken
from graphdir.settings import load_settings
from graphdir.store.base import StoredObject
from graphdir.web.app import build_app

N = 1_000_000
PAGE = 999

pytestmark = pytest.mark.slow


def _users(tenant: str, ids: list[str]) -> Iterator[StoredObject]:
    for i, uid in enumerate(ids):
        props = {"id": uid, "displayName": f"user {i}", "userPrincipalName": f"u{i}@contoso.onmicrosoft.com", "businessPhones": []}
        yield StoredObject(tenant, uid, "user", props, "2026-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, list[str], str]]:
    path: Path = tmp_path_factory.mktemp("big") / "big.db"
    app = build_app(load_settings(database_url=f"sqlite:///{path}", env={}))
    graph = app.state.graph
    graph.start()
    tid = graph.tenant["id"]
    gid = str(uuid.uuid4())
    ids = sorted(str(uuid.uuid4()) for _ in range(N))
    props = {"id": gid, "displayName": "everyone", "groupTypes": [], "mailEnabled": False, "securityEnabled": True, "mailNickname": "everyone"}
    group = StoredObject(tid, gid, "group", props, "2026-01-01T00:00:00Z")
    graph.store.bulk_load(tid, [group], [])
    graph.store.bulk_load(tid, _users(tid, ids), ((gid, m, "user") for m in ids))
    token = mint(graph.ring, tid, app_id=graph.app_id, roles=["GroupMember.Read.All"])

    yield app, gid, ids, token
    graph.stop()


def _get(app: object, url: str, token: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://graphdir.test") as c:  # type: ignore[arg-type]
            return await c.get(url, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["value"]]


def test_first_page_of_999(big: tuple[object, str, list[str], str]) -> None:
    app, gid, ids, token = big
    resp = _get(app, f"/v1.0/groups/{gid}/members?$top={PAGE}", token)
    assert _ids(resp) == ids[:PAGE]
    link = resp.json()["@odata.nextLink"]
    assert link.startswith(f"http://graphdir.test/v1.0/groups/{gid}/members?")
    second = _get(app, link, token)
    assert _ids(second) == ids[PAGE : 2 * PAGE]


@pytest.mark.parametrize("depth", [500_000, N - 2 * PAGE, N - PAGE - 1, N - PAGE])
def test_pages_deep_and_at_the_end(big: tuple[object, str, list[str], str], depth: int) -> None:
    app, gid, ids, token = big
    token_after = encode_skiptoken((ids[depth - 1],), None)
    resp = _get(app, f"/v1.0/groups/{gid}/members?$top={PAGE}&$skiptoken={token_after}", token)
    got = _ids(resp)
    assert got == ids[depth : depth + PAGE]
    if depth + PAGE >= N:
        assert "@odata.nextLink" not in resp.json()
    else:
        assert "@odata.nextLink" in resp.json()


def test_whole_group_walked_by_next_links(big: tuple[object, str, list[str], str]) -> None:
    """Following nextLinks from the first page to the last returns every member once, in order."""
    app, gid, ids, token = big

    async def walk() -> list[str]:
        seen: list[str] = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://graphdir.test") as c:  # type: ignore[arg-type]
            url: str | None = f"/v1.0/groups/{gid}/members?$top={PAGE}&$select=id"
            while url:
                r = await c.get(url, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200
                body = r.json()
                seen += [v["id"] for v in body["value"]]
                url = body.get("@odata.nextLink")
        return seen

    seen = asyncio.run(walk())
    assert len(seen) == N
    assert seen == ids


def test_count_segment_of_the_large_group(big: tuple[object, str, list[str], str]) -> None:
    app, gid, _ids_, token = big

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://graphdir.test") as c:  # type: ignore[arg-type]
            return await c.get(f"/v1.0/groups/{gid}/members/$count", headers={"Authorization": f"Bearer {token}", "ConsistencyLevel": "eventual"})

    resp = asyncio.run(go())
    assert resp.status_code == 200
    assert resp.text == str(N)
