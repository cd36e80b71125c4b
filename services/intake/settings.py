"""Settings of the intake service (environment variables; see subsidy/settings.py for the shared ones)."""

from subsidy.settings import PlatformSettings


class IntakeSettings(PlatformSettings):
    """Nothing of its own yet: the shared connections and logging."""
