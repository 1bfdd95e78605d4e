"""experiment_metrics (CSV per variant) and email_templates (full content, incremental)."""

from urllib.parse import parse_qs, urlsplit

from airbyte_cdk.models import SyncMode

from unit_tests.harness import API, final_state, records_of, read_stream

# Iterable's headers are readable names, as in campaigns/metrics.
EXPERIMENTS_CSV = (
    "Campaign Id,Experiment Id,Template Id,Name,Type,Created By,Creation Date,Last Modified,Subject,Improvement,"
    "Confidence,Total Email Sends,Revenue,Purchases / M (Email)\n"
    "2220229,310000,3043649,2024,Email Body,ops@example.com,2023-12-25 01:52:47 +00:00,2023-12-26 23:01:16 +00:00,Hi,,,3355,780.12,0\n"
    "2220229,310000,7100001,2024,Email Body,ops@example.com,2023-12-25 01:52:47 +00:00,2023-12-26 23:01:16 +00:00,Hello,1.02,0.888,5247,168.30,1.5\n"
)
JAN_2024 = 1704067200000


def test_experiment_metrics_are_read_for_batches_of_campaigns_into_their_declared_columns(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": [{"id": 2220229}, {"id": 2220230}]})
    metrics = requests_mock.get(f"{API}/experiments/metrics", text=EXPERIMENTS_CSV)

    records = records_of(read_stream("experiment_metrics", config))

    assert parse_qs(urlsplit(metrics.last_request.url).query)["campaignId"] == ["2220229", "2220230"]
    assert records[0] == {
        "campaignId": 2220229, "experimentId": 310000, "templateId": 3043649, "name": "2024", "type": "Email Body",
        "createdBy": "ops@example.com", "creationDate": "2023-12-25T01:52:47+00:00",
        "lastModified": "2023-12-26T23:01:16+00:00", "subject": "Hi", "totalEmailSends": 3355, "revenue": 780.12,
        "additionalFields": {"Purchases / M (Email)": 0},
    }, "headers fill the camelCase columns; numbers are numbers, text stays text, empty cells are left out"
    assert records[1]["improvement"] == 1.02 and records[1]["confidence"] == 0.888


def test_experiment_metrics_with_headers_that_name_no_key_fail_instead_of_emitting_null_keys(config, requests_mock):
    requests_mock.get(f"{API}/campaigns", json={"campaigns": [{"id": 2220229}]})
    requests_mock.get(f"{API}/experiments/metrics", text="Campaign,Experiment,Variant Template\n2220229,310000,7100001\n")

    output = read_stream("experiment_metrics", config, expect_failure=True)

    assert not output.records, "a row without its primary key would collapse with every other one in a destination"
    error = output.errors[0].trace.error
    assert error.stream_descriptor.name == "experiment_metrics"
    assert "experimentId, templateId" in error.message and "Variant Template" in error.message, (
        "the error names the key columns and the header set Iterable sent"
    )


def _serve_email_templates(requests_mock, templates):
    def listing(request, context):
        query = parse_qs(urlsplit(request.url).query)
        assert query["messageMedium"] == ["Email"], "only email templates have email content"
        return {"templates": [t for t in templates if t["templateType"] == query["templateType"][0]]}

    def content(request, context):
        template_id = int(parse_qs(urlsplit(request.url).query)["templateId"][0])
        match = [t for t in templates if t["templateId"] == template_id]
        if not match:
            context.status_code = 404
            return {"code": "NotFound", "msg": "Template not found"}
        return {**{k: v for k, v in match[0].items() if k != "templateType"}, "html": f"<p>{template_id}</p>"}

    requests_mock.get(f"{API}/templates", json=listing)
    return requests_mock.get(f"{API}/templates/email/get", json=content)


def test_email_templates_fetch_full_content_and_only_changed_templates_next_time(config, requests_mock):
    templates = [
        {"templateId": 1, "templateType": "Base", "createdAt": JAN_2024, "updatedAt": JAN_2024 + 10},
        {"templateId": 2, "templateType": "Blast", "createdAt": JAN_2024, "updatedAt": JAN_2024 + 20},
    ]
    content = _serve_email_templates(requests_mock, templates)

    first = read_stream("email_templates", config, SyncMode.incremental)
    assert sorted((r["templateId"], r["html"]) for r in records_of(first)) == [(1, "<p>1</p>"), (2, "<p>2</p>")]

    templates[0]["updatedAt"] = JAN_2024 + 99
    fetched_before = content.call_count
    second = read_stream("email_templates", config, SyncMode.incremental, state=final_state(first))

    assert [(r["templateId"], r["updatedAt"]) for r in records_of(second)] == [(1, JAN_2024 + 99)]
    assert content.call_count - fetched_before == 1, "an unchanged template is not fetched again"


def test_a_template_deleted_before_its_content_is_read_is_skipped(config, requests_mock):
    _serve_email_templates(requests_mock, [])
    requests_mock.get(
        f"{API}/templates",
        json={"templates": [{"templateId": 9, "createdAt": JAN_2024, "updatedAt": JAN_2024 + 1}]},
    )

    output = read_stream("email_templates", config, SyncMode.incremental)

    assert records_of(output) == [] and not output.errors
