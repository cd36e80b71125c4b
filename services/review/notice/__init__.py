"""The public notice (公示) of a program batch: composing the list from confirmed awards, the notice
period, the public page, objections (异议) and their decisions, versions and their differences,
exports (XLSX, PDF). The batch workflow (workflows/publication) owns *when*: it waits for the
period's end and asks `publication.close_notice` whether the list is final."""
