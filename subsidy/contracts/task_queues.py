"""Temporal task queues: one per owner, so each service's workers scale on their own.

Workflows run on the worker process's queue; activities run on the queue of the service that
owns them (review activities on the review service, notification activities on notify, ...).
"""

WORKFLOWS = "subsidy-workflows"
INTAKE = "subsidy-intake"
REVIEW = "subsidy-review"
NOTIFY = "subsidy-notify"

BY_SERVICE = {"intake": INTAKE, "review": REVIEW, "notify": NOTIFY}
