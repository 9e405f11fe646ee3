"""Validate a whole upload line by line, writing the canonical JSON Lines copy as it goes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger

from batchrecs.formats.input_files import (
    MAX_INPUT_BYTES,
    MAX_UPLOAD_BYTES,
    SERVICE_LIMITS,
    ReadLimits,
    SourceError,
    read_entries,
)
from batchrecs.formats.input_lines import (
    Blank,
    IdBlock,
    InputFormatError,
    Problem,
    ValidLine,
    validate_value,
)
from batchrecs.ports import ObjectWriter
from batchrecs.routes.config import THEME_INPUT_LINES, JobKind, Route
from batchrecs.spool import spool_directory
from batchrecs.submit.parts import StagedParts
from batchrecs.submit.unique import UniqueLines

MAX_PROBLEMS = 100

logger = Logger(child=True)


@dataclass
class ValidationTotals:
    lines: int = 0  # non-blank lines (or array elements) read
    valid: int = 0  # written to the staged copy
    invalid: int = 0
    duplicates: int = 0
    blank: int = 0


@dataclass
class ValidationResult:
    kind: JobKind
    on_invalid: Literal["reject", "skip"]
    totals: ValidationTotals = field(default_factory=ValidationTotals)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    file_problem: Problem | None = None
    staged_bytes: int = 0

    @property
    def accepted(self) -> bool:
        """Whether a job may be submitted from the staged copy."""
        if self.file_problem is not None or self.totals.valid == 0:
            return False
        return self.totals.invalid == 0 or self.on_invalid == "skip"

    def add_problem(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def report(self, **context: Any) -> dict[str, Any]:
        """The report users read: totals, the first problems with line numbers, and context."""
        return {
            **context,
            "kind": self.kind.value,
            "onInvalidLines": self.on_invalid,
            "accepted": self.accepted,
            "totals": asdict(self.totals),
            "fileProblem": self.file_problem.to_json() if self.file_problem else None,
            "problemCount": self.problem_count,
            "problemsShown": len(self.problems),
            "problems": [problem.to_json() for problem in self.problems],
        }

    def summary(self) -> str:
        if self.file_problem is not None:
            problem = self.file_problem
            return f"line {problem.line}: expected {problem.expected}, found {problem.found}"
        if self.totals.valid == 0:
            return "no valid lines"
        return f"{self.totals.invalid} invalid lines of {self.totals.lines}"


def validate_upload_size(
    size: int, kind: JobKind, on_invalid: Literal["reject", "skip"]
) -> ValidationResult | None:
    """An upload too large to be run (as several jobs, for kinds that may be), rejected before reading
    it; None if its size is fine."""
    limit = MAX_INPUT_BYTES if kind.max_lines is not None else MAX_UPLOAD_BYTES
    if size <= limit:
        return None
    result = ValidationResult(kind=kind, on_invalid=on_invalid)
    result.file_problem = Problem(0, f"a file of at most {limit} bytes", f"{size} bytes")
    return result


def validate_for_route(
    chunks: Iterable[bytes], name: str, route: Route, staged: ObjectWriter | StagedParts | None = None
) -> ValidationResult:
    """An upload checked as the route takes it (submit and ``batchrecs validate`` alike): its kind, its
    onInvalidLines, at most 100 lines with themes, filterValues only with a filter, its CSV columns."""
    return validate_upload(
        chunks,
        name,
        route.kind,
        route.onInvalidLines,
        staged,
        max_lines=THEME_INPUT_LINES if route.themes is not None else None,
        filtered=route.filterArn is not None,
        columns=route.columns,
    )


def validate_upload(
    chunks: Iterable[bytes],
    name: str,
    kind: JobKind,
    on_invalid: Literal["reject", "skip"],
    staged: ObjectWriter | StagedParts | None = None,
    max_bytes: int | None = None,  # of the normalised copy (default: one job's, or several jobs')
    limits: ReadLimits = SERVICE_LIMITS,
    max_lines: int | None = None,  # the route's own limit (themes: 100), else the kind's
    filtered: bool = True,  # the route names a filter (else a line's filterValues is a problem)
    columns: Mapping[str, str] | None = None,  # the route's CSV headers of input fields
) -> ValidationResult:
    """Read every line of an upload; write valid first-seen lines to ``staged`` while it can be used
    (``StagedParts``: in parts, when they are past one job's limits).

    Whatever the file holds, the outcome is a result (a file problem at worst), never an exception;
    only a failure to read the upload itself (``chunks``) is raised, as the error it was.
    """
    result = ValidationResult(kind=kind, on_invalid=on_invalid)
    reading = _Reading(result, kind, filtered, limits.lines, name)
    max_lines = max_lines or kind.max_lines
    if max_lines is None:  # any number of lines: the repeats are found exactly, in flat memory
        max_bytes = MAX_UPLOAD_BYTES if max_bytes is None else max_bytes
        with UniqueLines(spool_directory()) as unique:
            entries = read_entries(chunks, name, kind, limits, columns, blocks=True)
            for valid in reading.each_valid(entries):
                if isinstance(valid, IdBlock):
                    unique.add_block(valid.ids, valid.lines() if reading.staging else None)
                else:
                    line = valid.canonical + b"\n" if reading.staging else None
                    unique.add(valid.key.encode("utf-8", "surrogatepass"), line)
            outcome = unique.finish()
            reading.valid, reading.duplicates = outcome.unique, outcome.duplicates
            result.staged_bytes = outcome.unique_bytes or 0
            reading.close(max_bytes)
            if staged is not None and result.accepted:
                if isinstance(staged, StagedParts):
                    staged = staged.open(result.staged_bytes, reading.valid)
                unique.copy_unique(staged)  # the first line of each key, in upload order
        return result
    max_bytes = MAX_INPUT_BYTES if max_bytes is None else max_bytes  # a few lines: one job
    if isinstance(staged, StagedParts):
        staged = staged.open()
    seen: set[str] = set()  # a few hundred keys at most (segment kinds, themes): reading stops at the limit
    for valid in reading.each_valid(read_entries(chunks, name, kind, limits, columns)):
        assert isinstance(valid, ValidLine)  # no blocks were asked for
        if valid.key in seen:
            reading.duplicates += 1
            continue
        seen.add(valid.key)
        reading.valid += 1
        if reading.valid > max_lines:
            limit = f"at most {max_lines} lines for {kind.value}" + (
                " with themes" if max_lines != kind.max_lines else ""
            )
            result.file_problem = Problem(valid.line, limit, "more")
            break
        if reading.staging:
            if staged is not None:
                staged.write(valid.canonical + b"\n")
            result.staged_bytes += len(valid.canonical) + 1
    reading.close(max_bytes)
    return result


class _Reading:
    """One upload's counts and problems as its entries are read."""

    def __init__(self, result: ValidationResult, kind: JobKind, filtered: bool, max_lines: int, name: str):
        self.result, self._kind, self._filtered, self._max_lines, self._name = (
            result,
            kind,
            filtered,
            max_lines,
            name,
        )
        self.staging = True  # valid lines still go to the normalised copy (no invalid one in reject mode)
        self.lines = self.blank = self.valid = self.invalid = self.duplicates = 0

    def each_valid(self, entries: Iterable[tuple[int, Any]]) -> Iterator[ValidLine | IdBlock]:
        """The valid lines (and blocks of them) of ``entries``; everything else is counted and reported.
        A file problem ends it; only a failure to read the upload itself is raised."""
        result, number = self.result, 0
        try:
            for number, value in entries:
                if value.__class__ is IdBlock:
                    if self.lines + self.blank + len(value.ids) > self._max_lines:
                        over = number + self._max_lines - self.lines - self.blank
                        result.file_problem = Problem(over, f"at most {self._max_lines:,} lines", "more")
                        return
                    self.lines += len(value.ids)
                    yield value
                    continue
                if value.__class__ is Blank:
                    self.blank += value.count
                else:
                    self.lines += 1
                if self.lines + self.blank > self._max_lines:
                    result.file_problem = Problem(number, f"at most {self._max_lines:,} lines", "more")
                    return
                if value.__class__ is Blank:
                    continue
                checked = (
                    value
                    if value.__class__ is Problem
                    else validate_value(number, value, self._kind, self._filtered)
                )
                if isinstance(checked, ValidLine):
                    yield checked
                    continue
                self.invalid += 1
                self.staging = self.staging and result.on_invalid == "skip"
                for problem in [checked] if isinstance(checked, Problem) else checked:
                    result.add_problem(problem)
        except InputFormatError as exc:
            result.file_problem = exc.problem
        except SourceError as exc:
            raise exc.__cause__ or exc from None
        except Exception as exc:  # noqa: BLE001 - a file must be rejected, not crash (and be retried) forever
            logger.exception(
                "unexpected error reading an upload", extra={"upload": self._name, "line": number}
            )
            found = f"an error ({type(exc).__name__})"
            result.file_problem = Problem(number, "a file batchrecs can read", found)

    def close(self, max_bytes: int) -> None:
        """The totals on the result, and the problems only the whole file shows."""
        result, totals = self.result, self.result.totals
        totals.lines, totals.blank, totals.valid = self.lines, self.blank, self.valid
        totals.invalid, totals.duplicates = self.invalid, self.duplicates
        if result.file_problem is None and self.staging and result.staged_bytes > max_bytes:
            expected = f"at most {max_bytes} bytes of batch input"
            result.file_problem = Problem(0, expected, f"{result.staged_bytes} bytes after normalising")
        if result.file_problem is None and totals.valid == 0:
            found = "no lines" if totals.lines == 0 else "no valid lines"
            result.file_problem = Problem(0, "at least one valid line", found)
