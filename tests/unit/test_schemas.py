import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import (
    EVENT_TYPES,
    AudioRef,
    DeadLetter,
    JobStatus,
    JobStatusChanged,
    TranscriptionOptions,
    TranscriptionRequested,
)
from stack.cli import write_schemas

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def test_published_schemas_are_current(tmp_path: Path) -> None:
    """docs/schemas is what consumers in other languages read; `make schemas` refreshes it."""
    for path in write_schemas(tmp_path):
        published = PUBLISHED / path.name
        assert published.is_file(), f"{published.name} is not published; run `make schemas`"
        assert json.loads(published.read_text()) == json.loads(path.read_text()), f"{path.name} is stale"


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_carries_the_envelope(name: str) -> None:
    schema = json.loads((PUBLISHED / f"{name}.schema.json").read_text())
    assert {"event_id", "job_id", "occurred_at", "schema_version"} <= set(schema["properties"])
    jsonschema.Draft202012Validator.check_schema(schema)


def test_serialised_events_validate_against_their_schema() -> None:
    request = TranscriptionRequested(job_id="job_1", audio=AudioRef(key="uploads/job_1/audio"))
    schema = json.loads((PUBLISHED / "TranscriptionRequested.schema.json").read_text())
    jsonschema.validate(json.loads(request.model_dump_json()), schema)
    status = JobStatusChanged(job_id="job_1", status=JobStatus.PROCESSING, progress=0.5)
    jsonschema.validate(
        json.loads(status.model_dump_json()), json.loads((PUBLISHED / "JobStatusChanged.schema.json").read_text())
    )
    letter = DeadLetter(source_topic="t", source_partition=0, source_offset=3, payload="{", reason="bad json")
    jsonschema.validate(
        json.loads(letter.model_dump_json()), json.loads((PUBLISHED / "DeadLetter.schema.json").read_text())
    )


def test_events_round_trip_and_ignore_unknown_fields() -> None:
    raw = '{"job_id": "j", "audio": {"key": "a/b"}, "future_field": 1}'
    event = TranscriptionRequested.model_validate_json(raw)
    assert event.options == TranscriptionOptions()
    assert TranscriptionRequested.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    "options",
    [{"language": "english"}, {"task": "summarise"}, {"temperature": 1.5}, {"unknown": True}],
)
def test_bad_options_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TranscriptionOptions.model_validate(options)


def test_job_ids_are_safe_keys() -> None:
    with pytest.raises(ValidationError):
        TranscriptionRequested(job_id="../etc", audio=AudioRef(key="k"))
