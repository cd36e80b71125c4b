"""Settings of the workflow worker process (environment variables; shared ones in subsidy/settings.py)."""

from subsidy.settings import PlatformSettings


class WorkerSettings(PlatformSettings):
    """Nothing of its own yet: the shared connections and logging."""
