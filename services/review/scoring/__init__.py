"""Shenzhen's eligibility findings, expert review, scores and tiers, wired to the reviewers' API
(issue 11; notice 02(一)(二)(四), 03): the pure rules live in services/review/rules/ and
services/review/awards/shenzhen.py, this room records, checks and moves the lifecycle on.

- eligibility.py: notice 03's findings for each recorded Shenzhen submission;
- registry.py: the expert registry the conflict-of-interest check reads;
- service.py: panel assignment, declining, scoring, aggregation, the tiering proposal and its confirmation;
- api.py: the routes.
"""
