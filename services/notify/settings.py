"""Settings of the notify service (environment variables; see subsidy/settings.py for the shared ones)."""

from subsidy.settings import PlatformSettings


class NotifySettings(PlatformSettings):
    """Nothing of its own yet: the shared connections and logging."""
