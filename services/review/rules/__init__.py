"""Eligibility rules as plain functions over an application's facts and reference data, each finding
citing its clause (shenzhen_eligibility.py: notice 03). Longgang's pre-checks are in ../pre_checks.py."""
