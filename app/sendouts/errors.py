from __future__ import annotations

from app.core.errors import NotFound, Unprocessable


class SampleReportNotFound(NotFound):
    code = "sample_report_not_found"


class BadSampleReportTag(Unprocessable):
    code = "bad_sample_report_tag"
