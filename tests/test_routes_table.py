"""The route table (issue 9): typed handlers, a Microsoft doc page on every route, and the README's
"What is served" table generated from it — this test fails when they drift."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from graphdir.auth.permissions import Perms
from graphdir.web import routes
from graphdir.web.context import Ctx
from graphdir.web.responses import GraphResponse
from graphdir.web.router import ANONYMOUS, Route
from graphdir.web.routes import ADMIN_ROUTES, ROUTES, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"
PERMS = Perms(("Group.Read.All",), ("Group.Read.All",))


async def _handler(c: Ctx) -> GraphResponse:  # pragma: no cover - never called
    raise AssertionError


def test_readme_table_is_the_route_table() -> None:
    """Regenerate with ``python -m graphdir.web.routes --write README.md``."""
    text = README.read_text()
    assert text.count(routes.BEGIN) == 1 and text.count(routes.END) == 1, "README.md lacks the routes markers"
    between = text[text.index(routes.BEGIN) + len(routes.BEGIN) : text.index(routes.END)]
    assert between.strip() == markdown_table().strip(), "README.md's route table drifted: run python -m graphdir.web.routes --write README.md"


def test_table_has_a_row_per_route() -> None:
    table = markdown_table()
    for route in ROUTES:
        row = f"| {route.method} | `/{'/'.join(route.pattern)}` |"
        assert sum(line.startswith(row) for line in table.splitlines()) == 1, route.name
        assert f"({route.doc})" in table
    assert "`/graphdir/admin/seed`" in table


def test_every_route_has_its_microsoft_doc_page() -> None:
    for route in ROUTES:
        assert route.doc.startswith("https://learn.microsoft.com/en-us/graph/"), route.name
    api_pages = {r.doc.removeprefix(routes.API) for r in ROUTES if r.doc.startswith(routes.API)}
    assert {"group-delete-members", "group-post-members", "group-list-members", "user-get", "group-update"} <= api_pages
    assert next(r for r in ROUTES if r.name == "DELETE /groups/{gid}/members/{mid}/$ref").doc == routes.API + "group-delete-members"
    for route in ADMIN_ROUTES:  # graphdir's own API documents itself in this repository
        page = Path(__file__).resolve().parent.parent / route.doc.split("#")[0]
        assert page.is_file(), route.doc


def test_handlers_are_typed() -> None:
    for route in ROUTES + ADMIN_ROUTES:
        assert inspect.iscoroutinefunction(route.handler), route.name
        hints = typing.get_type_hints(route.handler)
        assert hints.pop("return") is GraphResponse, route.name
        assert list(hints.values()) == [Ctx], route.name


@pytest.mark.parametrize("doc", ["", "docs/", "https://example.com/x", "https://learn.microsoft.com/en-us/graph/", None])
def test_a_route_without_a_doc_page_does_not_start(doc: object) -> None:
    with pytest.raises(TypeError, match="no doc page"):
        Route("GET", ("x",), _handler, PERMS, "GET /x", doc)  # type: ignore[arg-type]


def test_a_route_without_permissions_does_not_start() -> None:
    with pytest.raises(TypeError, match="no permissions"):
        Route("GET", ("x",), _handler, None, "GET /x", routes.API + "x")  # type: ignore[arg-type]
    assert Route("GET", ("x",), _handler, ANONYMOUS, "GET /x", routes.API + "x").perms is ANONYMOUS  # explicit, never implied


def test_main_prints_and_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert routes.main(["--markdown"]) == 0
    assert capsys.readouterr().out == markdown_table()
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{routes.BEGIN}\nold table\n{routes.END}\n\nrest\n")
    assert routes.main(["--write", str(readme)]) == 0
    assert readme.read_text() == f"# x\n\n{routes.BEGIN}\n{markdown_table()}{routes.END}\n\nrest\n"
    assert routes.main([]) == 2
