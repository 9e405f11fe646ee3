"""Validate a whole upload line by line, writing the canonical JSON Lines copy as it goes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger

from batchrecs.formats.input_files import (
    MAX_INPUT_BYTES,
    SERVICE_LIMITS,
    ReadLimits,
    SourceError,
    read_entries,
)
from batchrecs.formats.input_lines import Blank, InputFormatError, Problem, ValidLine, validate_value
from batchrecs.ports import ObjectWriter
from batchrecs.routes.config import THEME_INPUT_LINES, JobKind, Route

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
    """An upload too large to be a job's input, rejected before reading it; None if its size is fine."""
    if size <= MAX_INPUT_BYTES:
        return None
    result = ValidationResult(kind=kind, on_invalid=on_invalid)
    result.file_problem = Problem(0, f"a file of at most {MAX_INPUT_BYTES} bytes", f"{size} bytes")
    return result


def validate_for_route(
    chunks: Iterable[bytes], name: str, route: Route, staged: ObjectWriter | None = None
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
    staged: ObjectWriter | None = None,
    max_bytes: int = MAX_INPUT_BYTES,
    limits: ReadLimits = SERVICE_LIMITS,
    max_lines: int | None = None,  # the route's own limit (themes: 100), else the kind's
    filtered: bool = True,  # the route names a filter (else a line's filterValues is a problem)
    columns: Mapping[str, str] | None = None,  # the route's CSV headers of input fields
) -> ValidationResult:
    """Read every line of an upload; write valid first-seen lines to ``staged`` while it can be used.

    Whatever the file holds, the outcome is a result (a file problem at worst), never an exception;
    only a failure to read the upload itself (``chunks``) is raised, as the error it was.
    """
    result = ValidationResult(kind=kind, on_invalid=on_invalid)
    totals = result.totals
    seen: set[str] = set()
    max_lines = max_lines or kind.max_lines
    staging = True  # valid lines still go to the normalised copy (counted even with no writer: validate)
    lines = blank = valid = invalid = duplicates = number = 0  # counted here, kept on ``totals`` at the end
    try:
        for number, value in read_entries(chunks, name, kind, limits, columns):
            if value.__class__ is Blank:
                blank += value.count
            else:
                lines += 1
            if lines + blank > limits.lines:
                result.file_problem = Problem(number, f"at most {limits.lines:,} lines", "more")
                break
            if value.__class__ is Blank:
                continue
            checked = value if value.__class__ is Problem else validate_value(number, value, kind, filtered)
            if not isinstance(checked, ValidLine):
                invalid += 1
                staging = staging and on_invalid == "skip"
                for problem in [checked] if isinstance(checked, Problem) else checked:
                    result.add_problem(problem)
                continue
            if checked.key in seen:
                duplicates += 1
                continue
            seen.add(checked.key)
            valid += 1
            if max_lines is not None and valid > max_lines:
                limit = f"at most {max_lines} lines for {kind.value}" + (
                    " with themes" if max_lines != kind.max_lines else ""
                )
                result.file_problem = Problem(number, limit, "more")
                break
            if staging:
                if staged is not None:
                    staged.write(checked.canonical + b"\n")
                result.staged_bytes += len(checked.canonical) + 1
                if result.staged_bytes > max_bytes:
                    expected = f"at most {max_bytes} bytes of batch input"
                    result.file_problem = Problem(number, expected, "more after normalising")
                    break
    except InputFormatError as exc:
        result.file_problem = exc.problem
    except SourceError as exc:
        raise exc.__cause__ or exc from None
    except Exception as exc:  # noqa: BLE001 - a file must be rejected, not crash (and be retried) forever
        logger.exception("unexpected error reading an upload", extra={"upload": name, "line": number})
        result.file_problem = Problem(number, "a file batchrecs can read", f"an error ({type(exc).__name__})")
    finally:
        totals.lines, totals.blank, totals.valid = lines, blank, valid
        totals.invalid, totals.duplicates = invalid, duplicates
    if result.file_problem is None and totals.valid == 0:
        found = "no lines" if totals.lines == 0 else "no valid lines"
        result.file_problem = Problem(0, "at least one valid line", found)
    return result
