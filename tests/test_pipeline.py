"""The stage registry: everything about a stage comes from its spec, so a new stage is one module
plus one registration line. A toy stage that tags SFT rows is registered here and built."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import config_dict, write_config

from raspberry.build_files.records import Lineage, Row, SftRow, schema
from raspberry.stages import registry
from raspberry.stages.spec import ShardContext, Stage


class Tagged(Row):
    id: str
    tag: str
    lineage: Lineage


async def tag_rows(ctx: ShardContext, sft: list[SftRow]) -> tuple[list[Tagged], dict]:
    rows = [
        Tagged(id=r.id, tag="long" if len(r.response) > 300 else "short", lineage=r.lineage)
        for r in sft
    ]
    return rows, {"rows_in": len(sft), "rows_out": len(rows), "report": {"tagged": len(rows)}}


TOY = Stage(
    name="tags",
    row_type=Tagged,
    compute=tag_rows,
    estimate=lambda ctx: [],  # it asks no model
    upstream=("sft",),
    funnel="tagged",
    preview=("id", "tag"),
    lines=lambda report: [f"tags: {report.get('tagged', 0)} rows tagged"],
)


def test_the_schema_is_derived_from_the_row_type():
    assert schema(Tagged).names == ["id", "tag", "lineage"]
    assert str(schema(Tagged).field("lineage").type).startswith("struct<question_id: string")


def test_a_stage_must_come_after_what_it_reads():
    with pytest.raises(ValueError, match="not registered before it"):
        registry.register(
            Stage(
                name="orphan",
                row_type=Tagged,
                compute=tag_rows,
                estimate=lambda ctx: [],
                upstream=("nowhere",),
            )  # fmt: skip
        )
    assert "orphan" not in registry.names()


def test_a_registered_toy_stage_runs_in_a_build(tmp_path, prefect_api, monkeypatch):
    from conftest import shard_file

    from raspberry.build_files.store import BuildStore
    from raspberry.report.tables import funnel_line, stage_reports

    config = write_config(tmp_path, config_dict(tmp_path, per_task=2, shards=2))
    # The registry as it was comes back after the test.
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register(TOY)
    from raspberry_flows.build import build_dataset

    summary = build_dataset(
        config_path=str(config), build_id="toy", output_dir=str(tmp_path / "builds")
    )
    assert summary["state"] == "completed", summary
    manifest = BuildStore(tmp_path / "builds", "toy").manifest()
    assert set(manifest["stages"]["tags"]) == {"shard-00000", "shard-00001"}
    rows = [
        r
        for s in range(2)
        for r in pq.read_table(shard_file(tmp_path / "builds", "toy", "tags", s)).to_pylist()
    ]
    sft_rows = summary["stages"]["sft"]["rows_out"]
    assert len(rows) == sft_rows > 0 and {r["tag"] for r in rows} <= {"long", "short"}
    assert all(r["lineage"]["stage"] == "tags" for r in rows)
    assert funnel_line(manifest).endswith(f"SFT rows {sft_rows} → tagged {sft_rows}")
    assert stage_reports(manifest)["tags"] == {"tagged": sft_rows}
