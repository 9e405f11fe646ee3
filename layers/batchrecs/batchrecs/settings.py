"""One settings model per function, read from the environment and validated at cold start.

Resource names have no defaults: a missing variable is a startup error, not a call to a table
named "NONE".
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    jobs_table_name: str = Field(min_length=1)
    event_bus_name: str = Field(min_length=1)
    routes_file: str = Field(min_length=1)


class SubmitSettings(_Settings):
    personalize_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    # the stack's DataKmsKeyArn: each job's input and output kmsKeyArn (empty: the bucket uses SSE-S3)
    data_kms_key_arn: str = Field(
        default="", pattern=r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+)?$"
    )


class MonitorSettings(_Settings):
    preference_ledger_table_name: str = Field(min_length=1)  # opt-outs to put back after SES imports
    # routes' schedules: the group the monitor keeps in step, and what each schedule invokes
    schedule_group_name: str = Field(min_length=1)
    scheduler_role_arn: str = Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    submit_function_arn: str = Field(min_length=1)
    failed_events_queue_arn: str = Field(min_length=1)
    data_bucket_name: str = Field(min_length=3)


class PreferenceLedgerSettings(BaseSettings):
    """The preference recorder: SES Subscription events -> the preference ledger."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    preference_ledger_table_name: str = Field(min_length=1)
    contact_data_retention_days: int = Field(ge=1)


class ExportSettings(_Settings):
    """The planner: fans a finished job's output out to the chunks queue."""

    chunks_queue_url: str = Field(min_length=1)
    export_chunk_bytes: int = Field(ge=1)


class ExportWorkerSettings(_Settings):
    recommendations_table_name: str = Field(min_length=1)
    chunks_queue_url: str = Field(min_length=1)  # a failed chunk's message is made visible later
    chunk_retry_seconds: int = Field(default=60, ge=0)  # the first retry's delay (then x4 per receive)
    chunk_max_receives: int = Field(ge=1)  # the chunks queue's maxReceiveCount
    export_worker_concurrency: int = Field(ge=1)  # the event source's MaximumConcurrency
    export_writer_threads: int = Field(default=4, ge=1, le=32)
