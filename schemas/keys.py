"""API keys as the key store keeps them and the CLI shows them. The secret itself is never stored or shown again
after creation."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class KeyLimits(BaseModel):
    """Per-key limits; None takes the API's default for that limit."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, gt=0)
    audio_minutes_per_day: float | None = Field(default=None, gt=0)


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    """Public part of the key (`sfk_<id>_<secret>`): names the key in lists, logs and job ownership."""
    name: str
    admin: bool = False
    """Sees and reads every job, not only its own."""
    limits: KeyLimits = Field(default_factory=KeyLimits)
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
