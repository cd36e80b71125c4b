"""Award arithmetic as plain functions (no framework, no I/O): Longgang's award per application
(longgang.py), Shenzhen's scores, tiers and amounts (shenzhen.py), and the shared money rules
(money.py: rounding, the remaining yearly cap, pro rata to a budget). Integer fen throughout."""
