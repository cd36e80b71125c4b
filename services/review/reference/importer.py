"""Reference lists an operator imports (`subsidy reference import KIND FILE.csv`): the CAC
generative-AI filing registry, the serious-dishonesty list, the scenario catalog and the expert
registry. Parsing only: storing a version is the repository's job.

- One schema per KIND (`SCHEMAS`): the columns, each with its type and whether it is required. The
  header row names the columns (any order; an unknown or missing column is an error).
- The file is UTF-8 (a BOM is allowed), comma-separated, RFC 4180 quoting (a field with a comma,
  quote or line break is quoted; a quote inside is doubled). Blank lines are skipped.
- All or nothing: the first error refuses the whole file, as `ReferenceImportError(line, column,
  message)`, line and column 1-based as a spreadsheet shows them (the column is the field's position),
  the message in Chinese for the operator.
- The version is the SHA-256 of the file's bytes: a finding records the version it read, and
  importing the same file twice gives the same version.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from subsidy.identifiers import is_valid_uscc

Kind = Literal["cac_filings", "serious_dishonesty", "scenarios", "experts"]


class ReferenceImportError(ValueError):
    def __init__(self, line: int, column: int, message: str):
        super().__init__(f"第 {line} 行第 {column} 列：{message}")
        self.line = line
        self.column = column
        self.message = message


# --- typed rows ------------------------------------------------------------------------------------


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CacFiling(_Row):
    """国家互联网信息办公室 生成式人工智能服务备案 (LG 二(一)1)."""

    filing_no: str
    model_name: str
    provider_name: str
    provider_uscc: str | None = None
    region: str | None = None  # 属地
    filed_on: date


class DishonestyEntry(_Row):
    """严重失信主体名单 (LG 三(一)2): listed until `expires_on` (None: no end given)."""

    uscc: str
    name: str
    authority: str | None = None
    listed_on: date
    expires_on: date | None = None


class Scenario(_Row):
    """市政务服务和数据管理局 政务人工智能应用场景 (SZ 03(二))."""

    scenario_id: str
    title: str
    published_on: date
    publisher: str
    demand_unit: str | None = None  # 场景需求单位
    url: str | None = None


class Expert(_Row):
    """An expert with their organisation and declared affiliations (USCCs), for conflicts of interest."""

    expert_id: str
    name: str
    organisation: str
    organisation_uscc: str | None = None
    fields: tuple[str, ...] = ()
    affiliations: tuple[str, ...] = ()  # USCCs the expert declares a link with


# --- schemas ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: Literal["text", "date", "uscc", "list", "uscc_list"]
    required: bool
    label: str  # Chinese, in error messages


@dataclass(frozen=True)
class Schema:
    kind: Kind
    label: str
    row: type[_Row]
    key: tuple[str, ...]  # the columns that together must be unique
    columns: tuple[Column, ...]


SCHEMAS: dict[str, Schema] = {
    schema.kind: schema
    for schema in (
        Schema("cac_filings", "生成式人工智能服务备案清单", CacFiling, ("filing_no",), (
            Column("filing_no", "text", True, "备案编号"),
            Column("model_name", "text", True, "模型名称"),
            Column("provider_name", "text", True, "备案单位"),
            Column("provider_uscc", "uscc", False, "备案单位统一社会信用代码"),
            Column("region", "text", False, "属地"),
            Column("filed_on", "date", True, "备案日期"),
        )),
        Schema("serious_dishonesty", "严重失信主体名单", DishonestyEntry, ("uscc", "authority", "listed_on"), (
            Column("uscc", "uscc", True, "统一社会信用代码"),
            Column("name", "text", True, "主体名称"),
            Column("authority", "text", False, "认定部门"),
            Column("listed_on", "date", True, "列入日期"),
            Column("expires_on", "date", False, "有效期至"),
        )),
        Schema("scenarios", "政务人工智能应用场景清单", Scenario, ("scenario_id",), (
            Column("scenario_id", "text", True, "场景编号"),
            Column("title", "text", True, "场景名称"),
            Column("published_on", "date", True, "发布日期"),
            Column("publisher", "text", True, "发布单位"),
            Column("demand_unit", "text", False, "场景需求单位"),
            Column("url", "text", False, "链接"),
        )),
        Schema("experts", "专家库", Expert, ("expert_id",), (
            Column("expert_id", "text", True, "专家编号"),
            Column("name", "text", True, "姓名"),
            Column("organisation", "text", True, "工作单位"),
            Column("organisation_uscc", "uscc", False, "工作单位统一社会信用代码"),
            Column("fields", "list", False, "专业领域"),
            Column("affiliations", "uscc_list", False, "申报关联单位"),
        )),
    )
}


@dataclass(frozen=True)
class ReferenceImport:
    kind: str
    version: str  # sha256 of the file's bytes
    rows: tuple[Any, ...]  # of the schema's row type


def import_reference(kind: str, content: bytes) -> ReferenceImport:
    """Parse a whole file of `kind`, or refuse it at its first error."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise ReferenceImportError(0, 0, f"未知的清单类型 {kind}（可选：{'、'.join(SCHEMAS)}）")
    version = hashlib.sha256(content).hexdigest()
    text = _decode(content)
    records = _records(text)
    header = next(records, None)
    if header is None:
        raise ReferenceImportError(1, 1, f"文件为空，{schema.label}需要表头行：{','.join(c.name for c in schema.columns)}")
    line, names = header
    positions = _header(schema, line, names)
    rows = []
    seen: dict[tuple[Any, ...], int] = {}
    for line, fields in records:
        if len(fields) != len(names):
            raise ReferenceImportError(line, min(len(fields), len(names)) + 1,
                                       f"本行有 {len(fields)} 列，表头有 {len(names)} 列")
        values: dict[str, Any] = {}
        for column in schema.columns:
            if column.name not in positions:
                continue
            index = positions[column.name]
            values[column.name] = _value(column, fields[index].strip(), line, index + 1)
        key = tuple(values.get(name) for name in schema.key)
        if key in seen:
            first = schema.key[0]
            shown = "、".join(f"{_label(schema, name)} {value or '（空）'}" for name, value in zip(schema.key, key, strict=True))
            raise ReferenceImportError(line, positions[first] + 1, f"{shown} 与第 {seen[key]} 行重复")
        seen[key] = line
        rows.append(schema.row.model_validate({k: v for k, v in values.items() if v is not None}))
    return ReferenceImport(kind=schema.kind, version=version, rows=tuple(rows))


def _label(schema: Schema, name: str) -> str:
    return next(c.label for c in schema.columns if c.name == name)


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = content[: error.start]
        line = before.count(b"\n") + 1
        column = before[before.rfind(b"\n") + 1:].count(b",") + 1
        raise ReferenceImportError(line, column, "不是 UTF-8 编码（请在表格软件中另存为“CSV UTF-8”）") from error


def _header(schema: Schema, line: int, names: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    known = {c.name for c in schema.columns}
    for index, raw in enumerate(names):
        name = raw.strip()
        if name not in known:
            raise ReferenceImportError(line, index + 1, f"未知的列名“{name}”，{schema.label}的列为：{','.join(c.name for c in schema.columns)}")
        if name in positions:
            raise ReferenceImportError(line, index + 1, f"列名“{name}”重复")
        positions[name] = index
    for column in schema.columns:
        if column.required and column.name not in positions:
            raise ReferenceImportError(line, len(names) + 1, f"缺少必填列“{column.name}”（{column.label}）")
    return positions


def _value(column: Column, raw: str, line: int, col: int) -> Any:
    def fail(problem: str) -> ReferenceImportError:
        return ReferenceImportError(line, col, f"“{column.label}”（{column.name}）{problem}")

    if not raw:
        if column.required:
            raise fail("为必填项，不能为空")
        return () if column.type in ("list", "uscc_list") else None
    if column.type == "text":
        return raw
    if column.type == "date":
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw):
                raise ValueError(raw)
            return date.fromisoformat(raw)
        except ValueError:
            raise fail(f"“{raw}”不是 YYYY-MM-DD 格式的日期") from None
    if column.type == "uscc":
        value = raw.upper()
        if not is_valid_uscc(value):
            raise fail(f"“{raw}”不是有效的统一社会信用代码")
        return value
    items = tuple(item.strip() for item in raw.split(";") if item.strip())
    if column.type == "uscc_list":
        items = tuple(item.upper() for item in items)
        bad = [item for item in items if not is_valid_uscc(item)]
        if bad:
            raise fail(f"“{bad[0]}”不是有效的统一社会信用代码（多个以英文分号分隔）")
    return items


# --- RFC 4180, with the line and field of every record ----------------------------------------------


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) per record; blank lines skipped. Raises at the first
    malformed quote with its line and field position."""
    line = 1
    i = 0
    n = len(text)
    while i < n:
        start_line = line
        fields: list[str] = []
        field: list[str] = []
        while True:  # one field
            if i < n and text[i] == '"':
                quote_line = line
                i += 1
                while True:
                    if i >= n:
                        raise ReferenceImportError(quote_line, len(fields) + 1, "引号未闭合")
                    ch = text[i]
                    if ch == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            field.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    if ch == "\n":
                        line += 1
                    field.append(ch)
                    i += 1
                if i < n and text[i] not in ",\r\n":
                    raise ReferenceImportError(line, len(fields) + 1, "引号后应为逗号或换行")
            else:
                while i < n and text[i] not in ",\r\n":
                    if text[i] == '"':
                        raise ReferenceImportError(line, len(fields) + 1, "未加引号的字段中含有引号（含引号的字段须整体加引号，引号写两次）")
                    field.append(text[i])
                    i += 1
            fields.append("".join(field))
            field = []
            if i < n and text[i] == ",":
                i += 1
                continue
            break
        if i < n and text[i] == "\r":
            i += 1
        if i < n and text[i] == "\n":
            i += 1
        line += 1
        if fields != [""]:
            yield start_line, fields

