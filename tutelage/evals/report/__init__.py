"""Run reports: ``report.md`` and a self-contained ``report.html`` sharing the same figures."""

from tutelage.evals.report.data import ReportData, collect
from tutelage.evals.report.write import Written, report_run, write_run_report

__all__ = ["ReportData", "Written", "collect", "report_run", "write_run_report"]
