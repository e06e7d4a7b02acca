"""The first slice of the GraphQL API, through the real HTTP endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.usefixtures("bekasi_boundary_set")

LOCATE = """
query Locate($lat: Float!, $lon: Float!) {
  locate(lat: $lat, lon: $lon) {
    __typename
    ... on Location {
      snapped distanceM
      kelurahan { code name }
      kecamatan { code name }
      boundarySet { isActive isApproximate }
    }
    ... on OutsideJurisdiction { distanceM message nearestKelurahan { code } }
    ... on ValidationError { message fields { field message } }
  }
}
"""


async def test_kecamatan_list_and_their_kelurahan(graphql: Any) -> None:
    body = await graphql(
        "{ kecamatanList { code name areaKm2 kelurahan { code kecamatan { code } } } }"
    )
    kecamatan = body["data"]["kecamatanList"]
    assert len(kecamatan) == 12
    assert sum(len(k["kelurahan"]) for k in kecamatan) == 56
    for k in kecamatan:
        assert all(kel["kecamatan"]["code"] == k["code"] for kel in k["kelurahan"])
    bantargebang = next(k for k in kecamatan if k["code"] == "32.75.07")
    assert [kel["code"] for kel in bantargebang["kelurahan"]] == [
        "32.75.07.1003",
        "32.75.07.1004",
        "32.75.07.1007",
        "32.75.07.1008",
    ]
    assert bantargebang["areaKm2"] == pytest.approx(19.243, rel=0.01)


@pytest.mark.parametrize("name", ["Pondok Gede", "pondokgede", "  PONDOK  gede "])
async def test_kecamatan_by_name_ignores_case_and_spaces(graphql: Any, name: str) -> None:
    body = await graphql("query($n: String) { kecamatan(name: $n) { code name } }", {"n": name})
    assert body["data"]["kecamatan"] == {"code": "32.75.08", "name": "Pondokgede"}


async def test_kelurahan_by_code_and_name(graphql: Any) -> None:
    body = await graphql(
        '{ a: kelurahan(code: "32.75.03.1004") { name kecamatan { name } } '
        ' b: kelurahan(name: "teluk pucung") { code } '
        ' c: kelurahan(code: "32.75.99.9999") { code } }'
    )
    assert body["data"] == {
        "a": {"name": "Teluk Pucung", "kecamatan": {"name": "Bekasi Utara"}},
        "b": {"code": "32.75.03.1004"},
        "c": None,
    }


async def test_lookup_needs_exactly_one_of_code_or_name(graphql: Any) -> None:
    body = await graphql('{ kelurahan(code: "32.75.03.1004", name: "Perwira") { code } }')
    assert body["data"] == {"kelurahan": None}
    assert body["errors"][0]["message"] == "give exactly one of `code` or `name`"
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_geometry_is_rfc7946_geojson_and_can_be_simplified(graphql: Any) -> None:
    body = await graphql(
        '{ kelurahan(code: "32.75.01.1001") { full: geometry simple: geometry(simplifyM: 100) } }'
    )
    kel = body["data"]["kelurahan"]
    assert kel["full"]["type"] == "MultiPolygon"
    lon, lat = kel["full"]["coordinates"][0][0][0]
    assert 106.8 < lon < 107.1 and -6.5 < lat < -6.1  # longitude first
    full_vertices = sum(len(r) for p in kel["full"]["coordinates"] for r in p)
    simple_vertices = sum(len(r) for p in kel["simple"]["coordinates"] for r in p)
    assert simple_vertices < full_vertices


async def test_locate_inside(graphql: Any) -> None:
    # A point well inside a kelurahan of Bekasi Timur.
    body = await graphql(LOCATE, {"lat": -6.2529, "lon": 107.0075})
    result = body["data"]["locate"]
    assert result["__typename"] == "Location"
    assert result["snapped"] is False and result["distanceM"] == 0
    assert result["kecamatan"]["code"] == result["kelurahan"]["code"][:8]
    assert result["boundarySet"] == {"isActive": True, "isApproximate": False}


async def test_locate_monas_is_outside(graphql: Any) -> None:
    body = await graphql(LOCATE, {"lat": -6.1754, "lon": 106.8272})
    result = body["data"]["locate"]
    assert result["__typename"] == "OutsideJurisdiction"
    assert result["distanceM"] > 5_000
    assert "outside Kota Bekasi" in result["message"]


async def test_locate_swapped_coordinates_is_a_validation_error(graphql: Any) -> None:
    body = await graphql(LOCATE, {"lat": 107.0, "lon": -6.25})
    result = body["data"]["locate"]
    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == "lat"
    assert "swapped" in result["fields"][0]["message"]


async def test_boundary_sets(graphql: Any) -> None:
    body = await graphql(
        "{ boundarySets { source isActive kelurahanCount kecamatanCount createdAt activatedAt } }"
    )
    active = [s for s in body["data"]["boundarySets"] if s["isActive"]]
    assert len(active) == 1
    assert active[0]["kelurahanCount"] == 56 and active[0]["kecamatanCount"] == 12
    assert active[0]["activatedAt"] is not None


async def test_graphql_response_json_media_type_and_status(client: AsyncClient) -> None:
    accept = {"accept": "application/graphql-response+json"}
    ok = await client.post("/graphql", json={"query": "{ boundarySets { id } }"}, headers=accept)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/graphql-response+json")

    invalid = await client.post("/graphql", json={"query": "{ nope }"}, headers=accept)
    assert invalid.status_code == 400
    assert invalid.headers["content-type"].startswith("application/graphql-response+json")
    assert "nope" in invalid.json()["errors"][0]["message"]

    legacy = await client.post("/graphql", json={"query": "{ nope }"})
    assert legacy.status_code == 200
    assert legacy.headers["content-type"].startswith("application/json")

    unparsable = await client.post(
        "/graphql", content=b"{not json", headers={**accept, "content-type": "application/json"}
    )
    assert unparsable.status_code == 400
    assert unparsable.json()["errors"][0]["message"]


async def test_health_readiness_and_metrics(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "boundary_set": "ok"}
    await client.post("/graphql", json={"query": "query Probe { boundarySets { id } }"})
    metrics = (await client.get("/metrics")).text
    assert "patriot_graphql_operation_seconds_count{" in metrics
    assert 'root_field="boundarySets"' in metrics
    # Names chosen by callers never become label values: metric series stay bounded.
    for name in ("Probe1", "Probe2"):
        await client.post("/graphql", json={"query": f"query {name} {{ boundarySets {{ id }} }}"})
    await client.post("/graphql", json={"query": "{ a: dinasList { code } b: holidays { date } }"})
    await client.post("/graphql", json={"query": "{ noSuchField }"})
    metrics = (await client.get("/metrics")).text
    assert "Probe" not in metrics and "noSuchField" not in metrics
    assert 'root_field="other"' in metrics


async def test_one_structured_log_line_per_operation(
    graphql: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    caplog.set_level("INFO", logger="patriot.operation")
    await graphql("query Named { kecamatanList { code } }")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "patriot.operation"]
    assert len(lines) == 1
    assert lines[0]["root_field"] == "kecamatanList"
    assert lines[0]["outcome"] == "ok"
    assert lines[0]["duration_ms"] >= 0


@pytest.mark.parametrize("simplify_m", [10, 100, 1000, 5000])
async def test_simplified_geometry_is_always_a_multipolygon(graphql: Any, simplify_m: int) -> None:
    body = await graphql(
        "query($m: Float) { kecamatanList { code geometry(simplifyM: $m) } "
        "kelurahanList { code geometry(simplifyM: $m) } }",
        {"m": simplify_m},
    )
    assert "errors" not in body, body
    areas = body["data"]["kecamatanList"] + body["data"]["kelurahanList"]
    assert len(areas) == 12 + 56
    assert {area["geometry"]["type"] for area in areas} == {"MultiPolygon"}
