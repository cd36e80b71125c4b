"""Reference lists: each kind's sample imports into typed rows with a content-hash version; a
malformed file is refused whole with the line and column of its first error, in Chinese."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from services.review.reference.importer import (
    SCHEMAS,
    CacFiling,
    Expert,
    ReferenceImportError,
    Scenario,
    import_reference,
)

SAMPLES = Path(__file__).resolve().parents[2] / "services" / "review" / "reference" / "samples"
SCENARIO_HEADER = "scenario_id,title,published_on,publisher,demand_unit,url\n"


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_kind_has_a_sample_that_imports(kind: str) -> None:
    content = (SAMPLES / f"{kind}.csv").read_bytes()
    result = import_reference(kind, content)
    assert result.kind == kind and result.rows
    assert all(isinstance(row, SCHEMAS[kind].row) for row in result.rows)
    assert len(result.version) == 64 and import_reference(kind, content).version == result.version


def test_rows_are_typed() -> None:
    filings = import_reference("cac_filings", (SAMPLES / "cac_filings.csv").read_bytes()).rows
    assert isinstance(filings[0], CacFiling) and filings[0].filed_on == date(2024, 1, 1)
    assert filings[2].model_name == "政务助手大模型（深圳版）"  # quoted field
    experts = import_reference("experts", (SAMPLES / "experts.csv").read_bytes()).rows
    assert isinstance(experts[0], Expert) and experts[0].fields == ("人工智能", "自然语言处理")
    assert experts[2].affiliations == ("91440305MA5K24680G",) and experts[0].affiliations == ()
    scenarios = import_reference("scenarios", (SAMPLES / "scenarios.csv").read_bytes()).rows
    assert isinstance(scenarios[0], Scenario) and scenarios[2].title == "公文辅助起草、校对" and scenarios[0].url is None


def test_a_changed_file_is_a_new_version() -> None:
    content = (SAMPLES / "scenarios.csv").read_bytes()
    assert import_reference("scenarios", content).version != import_reference("scenarios", content + b"X-1,t,2025-01-01,p,,\n").version


def test_bom_crlf_quoted_line_breaks_and_blank_lines() -> None:
    content = ("\ufeff" + SCENARIO_HEADER.replace("\n", "\r\n")
               + 'S-1,"多行\r\n标题，含逗号和""引号""",2025-01-02,局,,\r\n\r\nS-2,t,2025-01-03,局,,').encode()
    rows = import_reference("scenarios", content).rows
    assert [r.scenario_id for r in rows] == ["S-1", "S-2"]
    assert rows[0].title == '多行\r\n标题，含逗号和"引号"'


def test_columns_may_come_in_any_order_and_optional_ones_may_be_missing() -> None:
    rows = import_reference("scenarios", "publisher,published_on,title,scenario_id\n局,2025-01-02,t,S-1\n".encode()).rows
    assert rows[0].scenario_id == "S-1" and rows[0].demand_unit is None


@pytest.mark.parametrize(
    ("kind", "content", "line", "column", "says"),
    [
        ("scenarios", SCENARIO_HEADER + "S-1,t,2025/01/02,局,,\n", 2, 3, "YYYY-MM-DD"),
        ("scenarios", SCENARIO_HEADER + "S-1,t,2025-02-30,局,,\n", 2, 3, "日期"),
        ("scenarios", SCENARIO_HEADER + "S-1,t,2025-01-02,局,,\nS-2,,2025-01-02,局,,\n", 3, 2, "必填"),
        ("scenarios", SCENARIO_HEADER + "S-1,t,2025-01-02,局,,\nS-1,t,2025-01-02,局,,\n", 3, 1, "与第 2 行重复"),
        ("scenarios", SCENARIO_HEADER + "S-1,t,2025-01-02,局\n", 2, 5, "本行有 4 列"),
        ("scenarios", SCENARIO_HEADER + 'S-1,t,2025-01-02,"局,,\n', 2, 4, "引号未闭合"),
        ("scenarios", SCENARIO_HEADER + 'S-1,t"x",2025-01-02,局,,\n', 2, 2, "引号"),
        ("scenarios", SCENARIO_HEADER + 'S-1,"t"x,2025-01-02,局,,\n', 2, 2, "引号后应为逗号或换行"),
        ("scenarios", SCENARIO_HEADER + 'S-1,"a\nb",2025-01-02,局,,\nS-2,t,bad,局,,\n', 4, 3, "日期"),  # lines counted in quotes
        ("scenarios", "scenario_id,title,published_on,publisher,colour\n", 1, 5, "未知的列名“colour”"),
        ("scenarios", "scenario_id,title,published_on\n", 1, 4, "缺少必填列“publisher”"),
        ("scenarios", "scenario_id,title,title,published_on,publisher\n", 1, 3, "重复"),
        ("scenarios", "", 1, 1, "文件为空"),
        ("serious_dishonesty", "uscc,name,listed_on\n91440300MA5K000078,某公司,2025-01-01\n", 2, 1, "统一社会信用代码"),
        ("experts", "expert_id,name,organisation,affiliations\nEXP-1,某,某单位,91440305MA5K24680G;123\n", 2, 4, "“123”"),
    ],
)
def test_a_malformed_file_is_refused_whole_at_its_first_error(kind: str, content: str, line: int, column: int, says: str) -> None:
    with pytest.raises(ReferenceImportError) as error:
        import_reference(kind, content.encode())
    assert (error.value.line, error.value.column) == (line, column), str(error.value)
    assert says in error.value.message
    assert str(error.value).startswith(f"第 {line} 行第 {column} 列：")


def test_a_file_not_in_utf8_names_its_line() -> None:
    content = (SCENARIO_HEADER + "S-1,t,2025-01-02,局,,\n").encode() + "S-2,标题,2025-01-02,局,,\n".encode("gbk")
    with pytest.raises(ReferenceImportError) as error:
        import_reference("scenarios", content)
    assert (error.value.line, error.value.column) == (3, 2) and "UTF-8" in error.value.message


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ReferenceImportError, match="未知的清单类型"):
        import_reference("phone_book", b"a\n")


def test_one_subject_listed_by_two_authorities_is_two_entries() -> None:
    content = ("uscc,name,authority,listed_on\n91440300MA5K000077,某公司,市场监管局,2025-01-01\n"
               "91440300MA5K000077,某公司,税务局,2025-01-01\n").encode()
    assert len(import_reference("serious_dishonesty", content).rows) == 2
    with pytest.raises(ReferenceImportError, match="与第 2 行重复"):
        import_reference("serious_dishonesty", content.replace("税务局".encode(), "市场监管局".encode()))
