"""Fault tests record each case; the count is printed at the end of the test session."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sync.faults import CASES


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not CASES:
        return
    exact = sum(1 for case in CASES if case.exact_after)
    duplicates = sum(case.duplicates for case in CASES)
    terminalreporter.write_sep("-", f"sync fault cases: {len(CASES)} run, {exact} left the "
                               f"destination exactly as expected, {duplicates} raw duplicate "
                               "message(s) (dropped by id)")
    for case in CASES:
        terminalreporter.write_line(
            f"  {case.destination:<9} {case.fault:<58} "
            f"{'killed' if case.killed else 'failed loudly' if case.failed_first else 'recovered in-sync':<17} "
            f"{'exact' if case.exact_after else 'NOT EXACT'}"
            + (f", {case.duplicates} duplicate(s)" if case.duplicates else ""))
