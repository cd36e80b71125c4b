"""Reference lists an operator imports (importer.py: one CSV schema per kind, all-or-nothing,
versioned by content hash). Samples of each kind: samples/<kind>.csv."""
