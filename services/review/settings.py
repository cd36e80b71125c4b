"""Settings of the review service (environment variables; see subsidy/settings.py for the shared ones)."""

from pydantic import Field

from subsidy.settings import PlatformSettings


class ReviewSettings(PlatformSettings):
    """The shared connections and logging, and where the application view reads what review does not keep."""

    intake_url: str = Field(default="http://127.0.0.1:8001", description="INTAKE_URL: intake's HTTP API (events, refusals)")
    notify_url: str = Field(default="http://127.0.0.1:8003", description="NOTIFY_URL: notify's HTTP API (the SMS log)")
    upstream_timeout_seconds: float = Field(
        default=3.0, gt=0, le=30, description="UPSTREAM_TIMEOUT_SECONDS: a section from intake or notify waits this long"
    )
    # Review's connections serve the officials' requests, its activities, its outbox relay and its
    # subscribers' lanes (subsidy.messaging.KEYED_LANES each), and a decision that must hold its lock
    # until the lifecycle has applied it (an award confirmation: the enterprise's yearly-cap row)
    # keeps one for seconds: 75 confirmations at once held all ten of the shared default.
    database_pool_max: int = Field(default=24, ge=1, description="DATABASE_POOL_MAX")
    panel_result_retry_seconds: float = Field(
        default=30.0, gt=0,
        description="PANEL_RESULT_RETRY_SECONDS: how often, and after how long, a Shenzhen panel result that did not reach its lifecycle is asked again",
    )
    decision_busy_window_seconds: float = Field(
        default=15.0, gt=0, le=120,
        description="DECISION_BUSY_WINDOW_SECONDS: how long a decision is asked again while the lifecycle settles its previous step",
    )
    console_secure_cookies: bool = Field(
        default=False,
        description="CONSOLE_SECURE_COOKIES: the console's session cookie only over HTTPS (true behind the TLS Ingress)",
    )
