"""The reference data over GraphQL, through the real HTTP endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from shapely import box
from shapely.geometry import mapping

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "ADMIN"


SQUARE = dict(mapping(box(106.99, -6.26, 107.0, -6.25)))


DINAS_FIELDS = "code name shortName isKelurahanOffice isActive"
RESULT = """
  __typename
  ... on ValidationError { message fields { field message } }
"""


def _fields(result: dict[str, Any]) -> list[str]:
    assert result["__typename"] == "ValidationError", result
    return [f["field"] for f in result["fields"]]


# Queries


async def test_dinas_list_and_one_dinas(graphql: Any) -> None:
    body = await graphql(
        f'{{ dinasList {{ {DINAS_FIELDS} }} one: dinas(code: "satpolpp") {{ {DINAS_FIELDS} }} '
        'none: dinas(code: "NOPE") { code } }'
    )
    data = body["data"]
    assert len(data["dinasList"]) == 16
    assert [d["code"] for d in data["dinasList"]] == sorted(d["code"] for d in data["dinasList"])
    assert [d["code"] for d in data["dinasList"] if d["isKelurahanOffice"]] == ["KELURAHAN"]
    assert data["one"] == {
        "code": "SATPOLPP",
        "name": "Satuan Polisi Pamong Praja",
        "shortName": "Satpol PP",
        "isKelurahanOffice": False,
        "isActive": True,
    }
    assert data["none"] is None


async def test_categories_by_kind_with_their_group_and_dinas(graphql: Any) -> None:
    body = await graphql(
        """
        {
          all: categories { code parent { code } defaultDinas { code } serviceLevelDays }
          aspirasi: categories(kind: ASPIRASI) { code acceptedKinds }
          groups: categories(includeGroups: true) { code isGroup }
          plan: category(code: "RENCANA_TATA_RUANG") {
            name acceptedKinds parent { code children { code } } defaultDinas { shortName }
          }
          group: category(code: "TATA_KOTA") { parent { code } defaultDinas { code }
                                               serviceLevelDays children { code } }
        }
        """
    )
    assert "errors" not in body, body
    data = body["data"]
    assert len(data["all"]) >= 25
    for category in data["all"]:
        assert category["parent"] is not None
        assert category["defaultDinas"] is not None
        assert category["serviceLevelDays"] > 0
    assert all("ASPIRASI" in c["acceptedKinds"] for c in data["aspirasi"])
    assert "PKL" not in {c["code"] for c in data["aspirasi"]}
    assert "RENCANA_TATA_RUANG" in {c["code"] for c in data["aspirasi"]}
    assert {c["code"] for c in data["groups"] if c["isGroup"]} >= {"INFRASTRUKTUR", "TATA_KOTA"}
    assert data["plan"]["acceptedKinds"] == ["ASPIRASI", "INFORMASI"]
    assert data["plan"]["parent"]["code"] == "TATA_KOTA"
    assert "RENCANA_TATA_RUANG" in [c["code"] for c in data["plan"]["parent"]["children"]]
    assert data["plan"]["defaultDinas"] == {"shortName": "Distaru"}
    assert data["group"]["parent"] is None
    assert data["group"]["defaultDinas"] is None
    assert data["group"]["serviceLevelDays"] is None


async def test_holidays_of_a_year(graphql: Any) -> None:
    body = await graphql("{ holidays(year: 2026) { date name } }")
    holidays = body["data"]["holidays"]
    assert holidays[0] == {"date": "2026-01-01", "name": "Tahun Baru 2026 Masehi"}
    assert {"date": "2026-08-17", "name": "Proklamasi Kemerdekaan Republik Indonesia"} in holidays
    assert all(h["date"].startswith("2026-") for h in holidays)


# Mutations


CREATE_DINAS = f"""
mutation($input: CreateDinasInput!) {{
  createDinas(input: $input) {{ {RESULT} ... on Dinas {{ {DINAS_FIELDS} }} }}
}}
"""
UPDATE_DINAS = f"""
mutation($input: UpdateDinasInput!) {{
  updateDinas(input: $input) {{ {RESULT} ... on Dinas {{ {DINAS_FIELDS} }} }}
}}
"""
CREATE_CATEGORY = f"""
mutation($input: CreateCategoryInput!) {{
  createCategory(input: $input) {{
    {RESULT}
    ... on Category {{ code acceptedKinds parent {{ code }} defaultDinas {{ code }}
                      serviceLevelDays duplicateRadiusM isActive }}
  }}
}}
"""
UPDATE_CATEGORY = f"""
mutation($input: UpdateCategoryInput!) {{
  updateCategory(input: $input) {{
    {RESULT}
    ... on Category {{ code name parent {{ code }} defaultDinas {{ code }} serviceLevelDays
                      duplicateRadiusM isActive }}
  }}
}}
"""
RULE_FIELDS = """
  id priority description kecamatanCodes kelurahanCodes area isActive
  category { code } dinas { code }
"""
CREATE_RULE = f"""
mutation($input: CreateRoutingRuleInput!) {{
  createRoutingRule(input: $input) {{ {RESULT} ... on RoutingRule {{ {RULE_FIELDS} }} }}
}}
"""
UPDATE_RULE = f"""
mutation($input: UpdateRoutingRuleInput!) {{
  updateRoutingRule(input: $input) {{ {RESULT} ... on RoutingRule {{ {RULE_FIELDS} }} }}
}}
"""
DEACTIVATE_RULE = f"""
mutation($id: ID!) {{
  deactivateRoutingRule(id: $id) {{ {RESULT} ... on RoutingRule {{ id isActive }} }}
}}
"""
ADD_HOLIDAY = f"""
mutation($input: AddHolidayInput!) {{
  addHoliday(input: $input) {{ {RESULT} ... on Holiday {{ date name }} }}
}}
"""
REMOVE_HOLIDAY = f"""
mutation($date: Date!) {{
  removeHoliday(date: $date) {{ {RESULT} ... on Holiday {{ date name }} }}
}}
"""


async def _mutate(graphql: Any, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await graphql(document, variables)
    assert "errors" not in body, body
    (result,) = body["data"].values()
    assert isinstance(result, dict)
    return result


async def test_dinas_are_created_and_updated(graphql: Any) -> None:
    created = await _mutate(
        graphql,
        CREATE_DINAS,
        {"input": {"code": "dispora", "name": "Dinas Pemuda dan Olahraga", "shortName": "Dispora"}},
    )
    assert created == {
        "__typename": "Dinas",
        "code": "DISPORA",
        "name": "Dinas Pemuda dan Olahraga",
        "shortName": "Dispora",
        "isKelurahanOffice": False,
        "isActive": True,
    }
    updated = await _mutate(
        graphql, UPDATE_DINAS, {"input": {"code": "DISPORA", "shortName": "Dispora Kota"}}
    )
    assert (updated["name"], updated["shortName"]) == ("Dinas Pemuda dan Olahraga", "Dispora Kota")
    deactivated = await _mutate(
        graphql, UPDATE_DINAS, {"input": {"code": "DISPORA", "isActive": False}}
    )
    assert deactivated["isActive"] is False
    body = await graphql("{ dinasList { code } all: dinasList(includeInactive: true) { code } }")
    assert "DISPORA" not in {d["code"] for d in body["data"]["dinasList"]}
    assert "DISPORA" in {d["code"] for d in body["data"]["all"]}


async def test_categories_are_created_and_updated(graphql: Any) -> None:
    created = await _mutate(
        graphql,
        CREATE_CATEGORY,
        {
            "input": {
                "code": "SUMUR_RESAPAN",
                "name": "Sumur Resapan",
                "parentCode": "INFRASTRUKTUR",
                "acceptedKinds": ["LAPORAN", "ASPIRASI"],
                "defaultDinasCode": "DBMSDA",
                "serviceLevelDays": 10,
            }
        },
    )
    assert created == {
        "__typename": "Category",
        "code": "SUMUR_RESAPAN",
        "acceptedKinds": ["LAPORAN", "ASPIRASI"],
        "parent": {"code": "INFRASTRUKTUR"},
        "defaultDinas": {"code": "DBMSDA"},
        "serviceLevelDays": 10,
        "duplicateRadiusM": 100,
        "isActive": True,
    }
    updated = await _mutate(
        graphql,
        UPDATE_CATEGORY,
        {
            "input": {
                "code": "SUMUR_RESAPAN",
                "parentCode": "LINGKUNGAN",
                "defaultDinasCode": "DLH",
                "duplicateRadiusM": 250,
            }
        },
    )
    assert updated["parent"] == {"code": "LINGKUNGAN"}
    assert updated["defaultDinas"] == {"code": "DLH"}
    assert (updated["name"], updated["serviceLevelDays"], updated["duplicateRadiusM"]) == (
        "Sumur Resapan",
        10,
        250,
    )


async def test_routing_rules_are_created_updated_and_deactivated(graphql: Any) -> None:
    created = await _mutate(
        graphql,
        CREATE_RULE,
        {
            "input": {
                "categoryCode": "JALAN_RUSAK",
                "dinasCode": "DISHUB",
                "priority": 10,
                "description": "Jalan nasional: diteruskan",
                "kecamatanCodes": ["32.75.08"],
                "area": SQUARE,
            }
        },
    )
    assert created["__typename"] == "RoutingRule"
    assert created["category"] == {"code": "JALAN_RUSAK"}
    assert created["dinas"] == {"code": "DISHUB"}
    assert created["kecamatanCodes"] == ["32.75.08"]
    assert created["kelurahanCodes"] == []
    assert created["area"]["type"] == "MultiPolygon"
    assert created["isActive"] is True

    rule_id = created["id"]
    updated = await _mutate(
        graphql,
        UPDATE_RULE,
        {"input": {"id": rule_id, "area": None, "kelurahanCodes": ["32.75.03.1004"]}},
    )
    assert updated["area"] is None
    assert (updated["kecamatanCodes"], updated["kelurahanCodes"]) == (
        ["32.75.08"],
        ["32.75.03.1004"],
    )
    assert updated["priority"] == 10

    listed = await graphql('{ routingRules(categoryCode: "JALAN_RUSAK") { id } }')
    assert listed["data"]["routingRules"] == [{"id": rule_id}]
    deactivated = await _mutate(graphql, DEACTIVATE_RULE, {"id": rule_id})
    assert deactivated == {"__typename": "RoutingRule", "id": rule_id, "isActive": False}
    listed = await graphql(
        '{ active: routingRules(categoryCode: "JALAN_RUSAK") { id } '
        'all: routingRules(categoryCode: "JALAN_RUSAK", includeInactive: true) { id } }'
    )
    assert listed["data"] == {"active": [], "all": [{"id": rule_id}]}


async def test_holidays_are_added_and_removed(graphql: Any) -> None:
    added = await _mutate(
        graphql,
        ADD_HOLIDAY,
        {"input": {"date": "2026-07-01", "name": "Cuti Bersama (contoh)"}},
    )
    assert added == {"__typename": "Holiday", "date": "2026-07-01", "name": "Cuti Bersama (contoh)"}
    removed = await _mutate(graphql, REMOVE_HOLIDAY, {"date": "2026-07-01"})
    assert removed == added
    body = await graphql("{ holidays(year: 2026) { date } }")
    assert {"date": "2026-07-01"} not in body["data"]["holidays"]


LEAF = {
    "code": "NEW_LEAF",
    "name": "Baru",
    "parentCode": "INFRASTRUKTUR",
    "acceptedKinds": ["LAPORAN"],
    "defaultDinasCode": "DBMSDA",
    "serviceLevelDays": 5,
}
RULE = {
    "categoryCode": "JALAN_RUSAK",
    "dinasCode": "DISHUB",
    "priority": 10,
    "description": "contoh",
    "kecamatanCodes": ["32.75.08"],
}


@pytest.mark.parametrize(
    ("document", "variables", "field"),
    [
        (CREATE_DINAS, {"input": {"code": "DLH", "name": "x", "shortName": "x"}}, "code"),
        (CREATE_DINAS, {"input": {"code": "dinas baru", "name": "x", "shortName": "x"}}, "code"),
        (CREATE_DINAS, {"input": {"code": "BARU", "name": " ", "shortName": "x"}}, "name"),
        (CREATE_DINAS, {"input": {"code": "BARU", "name": "x", "shortName": ""}}, "shortName"),
        (UPDATE_DINAS, {"input": {"code": "NOPE", "name": "x"}}, "code"),
        (UPDATE_DINAS, {"input": {"code": "DLH", "name": ""}}, "name"),
        (UPDATE_DINAS, {"input": {"code": "DLH", "isActive": False}}, "isActive"),
        (CREATE_CATEGORY, {"input": {**LEAF, "code": "SAMPAH"}}, "code"),
        (CREATE_CATEGORY, {"input": {**LEAF, "parentCode": "SAMPAH"}}, "parentCode"),
        (CREATE_CATEGORY, {"input": {**LEAF, "parentCode": "NOPE"}}, "parentCode"),
        (CREATE_CATEGORY, {"input": {**LEAF, "defaultDinasCode": None}}, "defaultDinasCode"),
        (CREATE_CATEGORY, {"input": {**LEAF, "defaultDinasCode": "NOPE"}}, "defaultDinasCode"),
        (CREATE_CATEGORY, {"input": {**LEAF, "serviceLevelDays": None}}, "serviceLevelDays"),
        (CREATE_CATEGORY, {"input": {**LEAF, "serviceLevelDays": 0}}, "serviceLevelDays"),
        (CREATE_CATEGORY, {"input": {**LEAF, "acceptedKinds": []}}, "acceptedKinds"),
        (CREATE_CATEGORY, {"input": {**LEAF, "duplicateRadiusM": 0}}, "duplicateRadiusM"),
        (CREATE_CATEGORY, {"input": {**LEAF, "duplicateRadiusM": 5001}}, "duplicateRadiusM"),
        (
            CREATE_CATEGORY,
            {"input": {**LEAF, "parentCode": None, "serviceLevelDays": None}},
            "defaultDinasCode",
        ),
        (UPDATE_CATEGORY, {"input": {"code": "NOPE", "name": "x"}}, "code"),
        (
            UPDATE_CATEGORY,
            {"input": {"code": "SAMPAH", "serviceLevelDays": -1}},
            "serviceLevelDays",
        ),
        (UPDATE_CATEGORY, {"input": {"code": "SAMPAH", "parentCode": "PKL"}}, "parentCode"),
        (UPDATE_CATEGORY, {"input": {"code": "SAMPAH", "acceptedKinds": []}}, "acceptedKinds"),
        (
            UPDATE_CATEGORY,
            {"input": {"code": "TATA_KOTA", "parentCode": "LINGKUNGAN"}},
            "parentCode",
        ),
        (
            UPDATE_CATEGORY,
            {"input": {"code": "TATA_KOTA", "defaultDinasCode": "DISTARU"}},
            "defaultDinasCode",
        ),
        (UPDATE_CATEGORY, {"input": {"code": "TATA_KOTA", "isActive": False}}, "isActive"),
        (CREATE_RULE, {"input": {**RULE, "categoryCode": "INFRASTRUKTUR"}}, "categoryCode"),
        (CREATE_RULE, {"input": {**RULE, "dinasCode": "NOPE"}}, "dinasCode"),
        (CREATE_RULE, {"input": {**RULE, "priority": 5000}}, "priority"),
        (CREATE_RULE, {"input": {**RULE, "description": ""}}, "description"),
        (CREATE_RULE, {"input": {**RULE, "kecamatanCodes": ["32.75.99"]}}, "kecamatanCodes"),
        (CREATE_RULE, {"input": {**RULE, "kelurahanCodes": ["32.75.08.9999"]}}, "kelurahanCodes"),
        (CREATE_RULE, {"input": {**RULE, "kecamatanCodes": []}}, "area"),
        (
            CREATE_RULE,
            {"input": {**RULE, "area": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}}},
            "area",
        ),
        (UPDATE_RULE, {"input": {"id": "999999", "priority": 1}}, "id"),
        (UPDATE_RULE, {"input": {"id": "not-a-number", "priority": 1}}, "id"),
        (DEACTIVATE_RULE, {"id": "999999"}, "id"),
        (ADD_HOLIDAY, {"input": {"date": "2026-08-17", "name": "Lagi"}}, "date"),
        (ADD_HOLIDAY, {"input": {"date": "2026-07-01", "name": " "}}, "name"),
        (REMOVE_HOLIDAY, {"date": "2026-07-01"}, "date"),
    ],
)
async def test_every_refusal_names_the_field(
    graphql: Any, document: str, variables: dict[str, Any], field: str
) -> None:
    result = await _mutate(graphql, document, variables)
    assert _fields(result) == [field]
    assert result["message"].startswith(f"{field}: ")
