"""The SES sample route end to end on one local cloud: user directory lookup, missing addresses,
opt-outs kept across repeated exports, an export imported through several SES import jobs, and what
``--dump`` and the command's summary show. (``make demo`` runs the route as shipped.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from batchrecs_local.cli import job_summary
from batchrecs_local.session import (
    NO_ADDRESS_EVERY,
    OPTED_OUT_WEEKLY,
    UNSUBSCRIBED_ALL,
    LocalCloud,
    Options,
)

from tests.conftest import ROOT
from tests.e2e.conftest import SAMPLES, read_jsonl

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]  # the in-process cloud
SAMPLE = SAMPLES / "weekly-email" / "users.jsonl"  # users 1..40
WITHOUT_ADDRESS = {str(user) for user in range(1, 41) if user % NO_ADDRESS_EVERY == 0}
OPTED_OUT = {UNSUBSCRIBED_ALL, OPTED_OUT_WEEKLY}  # users 3 and 4, seeded as contacts who opted out


def test_opt_outs_survive_repeated_exports_imported_in_several_files(tmp_path: Path) -> None:
    # Given the weekly-email route with at most 10 contacts per import file
    routes = (ROOT / "config" / "routes.yaml").read_text()
    routes = routes.replace(
        "      topic: weekly-picks\n", "      topic: weekly-picks\n      maxContactsPerImport: 10\n"
    )
    assert "maxContactsPerImport: 10" in routes
    (tmp_path / "routes.yaml").write_text(routes)
    with LocalCloud(Options(routes_file=tmp_path / "routes.yaml")) as cloud:
        ses, contact_list = cloud.endpoint.client("sesv2"), cloud.outputs["ContactListName"]
        for week in range(2):
            # When the same users are exported again, after one more user opted out
            key = cloud.upload(SAMPLE, "weekly-email", f"week-{week}.jsonl")
            job = cloud.wait_for([key], timeout=120)[key]
            assert job["status"] == "EXPORTED", job.get("failureReason")
            contacts = {contact["emailAddress"]: contact for contact in cloud.contacts()}
            # Then the opt-outs are kept, everyone else stays subscribed
            assert contacts[UNSUBSCRIBED_ALL]["unsubscribeAll"] is True
            assert contacts[OPTED_OUT_WEEKLY]["topicPreferences"] == {"weekly-picks": "OPT_OUT"}
            assert contacts["user11@example.com"]["topicPreferences"] == {
                "weekly-picks": "OPT_OUT" if week else "OPT_IN"
            }
            assert contacts["user12@example.com"]["topicPreferences"] == {"weekly-picks": "OPT_IN"}
            assert contacts["user12@example.com"]["attributes"]["jobName"] == job["jobName"]
            # the route names a solution: the job ran its newest ACTIVE version, which every contact names
            version = cloud.endpoint.emulator.solution_versions["aws-user-personalization"]
            assert job["solutionVersionArn"] == version
            assert contacts["user12@example.com"]["attributes"]["solutionVersionArn"] == version
            counts = job["export"]["contacts"]
            assert counts["optedOut"] == 2 + week
            assert counts["contactsImported"] == 34 - week
            # And the contacts went through ceil(n / 10) import jobs, one per file
            assert counts["importFiles"] == len(job["importJobs"]) == -(-(34 - week) // 10)
            if week == 0:
                _check_first_export(cloud, job, tmp_path / "dump")
            ses.update_contact(
                ContactListName=contact_list,
                EmailAddress="user11@example.com",
                TopicPreferences=[{"TopicName": "weekly-picks", "SubscriptionStatus": "OPT_OUT"}],
            )


def _check_first_export(cloud: LocalCloud, job: dict[str, Any], dump: Path) -> None:
    # The summary a user sees counts staged contacts, missing addresses and kept opt-outs
    summary = job_summary(job)
    assert summary["status"] == "EXPORTED"
    assert summary["users_without_address"] == len(WITHOUT_ADDRESS) == 4
    assert summary["records_written"] == 40 - 4  # contacts staged
    assert summary["contacts_imported"] == 36 - len(OPTED_OUT)
    assert (summary["opted_out_kept"], summary["contacts_failed"], summary["import_jobs"]) == (2, 0, 4)
    # --dump writes every contact with its preferences and attributes
    cloud.dump(dump)
    contacts = {contact["emailAddress"]: contact for contact in read_jsonl(dump / "contacts.jsonl")}
    assert set(contacts) == {
        f"user{user}@example.com" for user in range(1, 41) if str(user) not in WITHOUT_ADDRESS
    }
    assert contacts[UNSUBSCRIBED_ALL]["unsubscribeAll"] is True
    subscribed = [contact for email, contact in contacts.items() if email not in OPTED_OUT]
    assert all(contact["topicPreferences"] == {"weekly-picks": "OPT_IN"} for contact in subscribed)
    # And each contact's attributes hold its recommendations, for the campaign template
    attributes = contacts["user1@example.com"]["attributes"]
    assert attributes["route"] == "weekly-email" and attributes["jobName"] == job["jobName"]
    assert len(attributes["items"]) == 10 and len(attributes["scores"]) == 10
    # And the users without an address are listed by id (never an address) in the report
    [report] = (dump / "reports" / job["jobName"] / "missing-addresses").iterdir()
    assert {json.loads(line)["userId"] for line in report.read_text().splitlines()} == WITHOUT_ADDRESS
