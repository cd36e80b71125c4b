"""Eligibility rules as plain functions over an application's facts and reference data, each finding
citing its clause: Longgang's pre-checks (longgang.py, the guide's 三 and 二(一)), Shenzhen's
eligibility (shenzhen_eligibility.py, notice 03), the reference lists (reference_checks.py),
materials checklists (materials.py), experts' conflicts of interest (expert_conflicts.py); the
activity that runs them for the workflow is activities.py."""
