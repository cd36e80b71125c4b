"""Duplicate and multi-source claims (LG 三(一)4, SZ 03(四)): normalisation of the identifiers
(normalize.py) and the detection over many applications' claims (detect.py). Flags only: nothing
here rejects an application; the reviewer acknowledges each flag."""
