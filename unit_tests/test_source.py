"""The source builds the streams its command needs: a read only its catalog's, spec none to speak of."""

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder

from source_iterable import SourceIterable
from source_iterable.source import manifest_for
from unit_tests.harness import make_config

ALL_STREAMS = 64


def stream_names(source: SourceIterable, config) -> set:
    return {stream.name for stream in source.streams(config)}


def test_a_read_builds_only_the_streams_of_its_catalog():
    config = make_config()
    catalog = CatalogBuilder().with_stream("events", SyncMode.full_refresh).with_stream("email_send", SyncMode.incremental).build()

    assert stream_names(SourceIterable(catalog=catalog, config=config), config) == {"events", "email_send"}, (
        "building all 64 streams took most of a process's own start-up; parents (list_users for events) "
        "are reached through definitions and need no entry of their own"
    )


def test_discover_and_check_see_every_stream():
    config = make_config()

    assert len(stream_names(SourceIterable(config=config), config)) == ALL_STREAMS


def test_spec_needs_no_stream_but_the_one_check_reads():
    manifest = manifest_for(catalog=None, config=None)

    assert [stream["$ref"] for stream in manifest["streams"]] == ["#/definitions/streams/channels"]
    assert manifest["spec"]["connection_specification"]["required"] == ["api_key", "start_date"]


def test_a_catalog_naming_an_unknown_stream_gets_the_whole_manifest_for_the_cdk_to_report():
    catalog = CatalogBuilder().with_stream("no_such_stream", SyncMode.full_refresh).build()

    assert len(manifest_for(catalog, make_config())["streams"]) == ALL_STREAMS
