"""`subsidy`, the platform's command line (an entrypoint, outside the shared package `subsidy/`):
cli/main.py wires the commands; each reads the services through their APIs or the stack's state."""
