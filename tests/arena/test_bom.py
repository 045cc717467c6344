"""``arena.items.bom``: an assembly's BOM lines over loopback against FakeArena (list, get,
bad input refused before anything is sent, the answer cache, help)."""

from __future__ import annotations

import json
import pydoc
from pathlib import Path
from typing import Any

import pytest

from arena_async import (
    AdditionalAttribute,
    ArenaClient,
    BadRequestError,
    BomItem,
    BomLine,
    CachePolicy,
    Url,
)
from arena_async._convert import structure
from arena_async.arena.items import ItemBom, Items
from arena_async.testing import FakeArena

BOM = "GET /items/{item}/bom"
BOM_LINE = "GET /items/{item}/bom/{ref}"
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "arena-bom-samples"


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    kw.setdefault("share", False)
    return ArenaClient(email=fake.email, password=fake.password, workspace_id=fake.workspace_id,
                       base_url=fake.url, **kw)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text())


async def test_list_and_get_return_the_fakes_bom_lines() -> None:
    async with FakeArena() as fake:
        assembly, resistor, glue = fake.add_item(), fake.add_item(name="Resistor"), \
            fake.add_item(name="Glue")
        first = fake.add_bom_line(assembly, resistor, quantity=4, ref_des="R1-R4",
                                  notes="0402")
        second = fake.add_bom_line(assembly, glue, quantity=0.5)
        async with client_for(fake) as arena:
            lines = await arena.items.bom.list(assembly)
            assert [line.guid for line in lines] == [first, second]
            assert all(type(line) is BomLine for line in lines)
            one, two = lines
            assert one.item == BomItem(guid=resistor, number="PN-000002", name="Resistor",
                                       revision_number="A", revision_status="WORKING",
                                       url=Url(**fake.item(resistor)["url"]))
            assert (one.line_number, one.quantity, one.ref_des, one.notes) == \
                (1, 4, "R1-R4", "0402")
            assert (two.line_number, two.quantity, two.ref_des, two.notes) == \
                (2, 0.5, None, None)
            assert await arena.items.bom.get(assembly, second) == two
            assert await arena.items.bom.get(assembly, line_guid=first) == one
            assert await arena.items.bom.list(resistor) == []  # no assembly: no lines
        assert fake.stats.by_route[BOM] == 2
        assert fake.stats.by_route[BOM_LINE] == 2
        assert [line["guid"] for line in fake.bom(assembly)] == [first, second]


async def test_the_seeded_workspace_has_boms_on_its_assemblies() -> None:
    async with FakeArena.seeded(items=24, seed=2) as fake, client_for(fake) as arena:
        assemblies = [g for g in fake.item_guids if fake.item(g)["isAssembly"]]
        assert assemblies
        for guid in fake.item_guids:
            lines = await arena.items.bom.list(guid)
            assert [line.guid for line in lines] == [x["guid"] for x in fake.bom(guid)]
            assert bool(lines) == (guid in assemblies)
            for line in lines:
                assert line.item.guid != guid
                assert line.item.number == fake.item(line.item.guid)["number"]


@pytest.mark.parametrize(("call", "message"), [
    (lambda bom: bom.list(""), "item_guid must not be empty"),
    (lambda bom: bom.list("A/../logout"), "item_guid must not contain"),
    (lambda bom: bom.list(None), "item_guid must be a string"),
    (lambda bom: bom.get("ASSEMBLY", ""), "line_guid must not be empty"),
    (lambda bom: bom.get("ASSEMBLY", "L?x=1"), "line_guid must not contain"),
    (lambda bom: bom.get("A B", "LINE"), "item_guid must not contain"),
    (lambda bom: bom.list("ASSEMBLY", deadline=-1), "deadline"),
])
async def test_bad_input_is_refused_before_anything_is_sent(call: Any, message: str) -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match=message):
            await call(arena.items.bom)
        assert fake.stats.requests == 0


async def test_an_unknown_item_or_line_is_arenas_400() -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        assembly = fake.add_item()
        with pytest.raises(BadRequestError) as caught:
            await arena.items.bom.list("ASCVEMVVS9S9S6D0DDZ3")
        assert (caught.value.status, caught.value.code) == (400, 3011)
        with pytest.raises(BadRequestError, match="WEYH08HHEVEL4N6F52Sf"):
            await arena.items.bom.get(assembly, "WEYH08HHEVEL4N6F52Sf")


async def test_the_answer_cache_serves_a_bom_asked_again() -> None:
    async with FakeArena.seeded(items=8, seed=1) as fake, \
            client_for(fake, cache=CachePolicy(ttl=60)) as arena:
        assembly = next(g for g in fake.item_guids if fake.bom(g))
        first = await arena.items.bom.list(assembly)
        line = await arena.items.bom.get(assembly, first[0].guid)
        assert await arena.items.bom.list(assembly) == first
        assert await arena.items.bom.get(assembly, first[0].guid) == line
        assert fake.stats.by_route[BOM] == 1
        assert fake.stats.by_route[BOM_LINE] == 1


def test_the_vendors_samples_structure() -> None:
    listing = sample("item_bom_1")["results"]
    lines = structure(listing, list[BomLine], path="$.results")
    assert lines[0] == BomLine(
        guid="P7RAF566FM5CVE8ZLBJ5",
        item=BomItem(guid="ASCV0QRR07Q7Q511F8Z3", number="432-00001",
                     name="Bezel, Front, EveryRoad", revision_number="C",
                     revision_status="EFFECTIVE",
                     url=Url(api="https://api.arenasolutions.com/v1/items/ASCV0QRR07Q7Q511F8Z3",
                             app="https://app.arenasolutions.com/ASCV0QRR07Q7Q511F8Z3")),
        line_number=1, quantity=5, ref_des="C15,C6,C10-12", notes=None)
    attributed = structure(sample("item_bom_2")["results"], list[BomLine], path="$.results")
    assert attributed[0].additional_attributes == [
        AdditionalAttribute(guid="GYI16WYZCBSATCVEXGP9", name="BOMATT",
                            api_name="GYI16WYZCBSATCVEXGP9", field_type="SINGLE_LINE_TEXT",
                            value="Ultra Violet"),
        AdditionalAttribute(guid="N5P8D356JIZH0J2L4N3H", name="DOCK DATE",
                            api_name="N5P8D356JIZH0J2L4N3H", field_type="DATE",
                            value="20220603235959")]
    empty = structure(sample("item_bom_line_1"), BomLine)
    assert empty.line_number is None
    assert empty.additional_attributes == [AdditionalAttribute(
        guid="4M6P8GPPM3K2L4N6P8I6", name="Bin #", api_name="custom325",
        field_type="SINGLE_LINE_TEXT", value=None)]
    with_substitutes = structure(sample("item_bom_line_2"), BomLine)  # substitutes: ignored
    assert (with_substitutes.line_number, with_substitutes.notes, with_substitutes.ref_des) == \
        (8, "BOM notes", "J1")


def test_help_lists_the_bom() -> None:
    assert "``bom`` (:class:`ItemBom`)" in (Items.__doc__ or "")
    assert "arena.items.bom" in pydoc.render_doc(ArenaClient, renderer=pydoc.plaintext)
    text = pydoc.render_doc(ItemBom, renderer=pydoc.plaintext)
    assert "All BOM lines of an item, ``GET /items/{item_guid}/bom``" in text
    assert "list[arena_async.models.arena.BomLine]" in text
    assert "line_guid" in text
