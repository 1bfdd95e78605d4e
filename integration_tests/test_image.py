"""The Airbyte image, run as Airbyte runs it, against the emulator: it behaves exactly as the CLI.

The image is built from the Dockerfile on the stand-in base (integration_tests/image.py) and
each command runs in a fresh container (`podman run --rm`) as the image's non-root `airbyte`
user, with its config, catalog and state files mounted read-only as Airbyte mounts them; the
container uses the host network, so it reaches the emulator on 127.0.0.1. Each test compares
the container's output with the CLI's (`source-iterable` from this checkout) on the same
emulator: the same spec, check outcome, catalog, records and state.
"""

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from integration_tests.connector import ALL_STREAMS_TIMEOUT_S, Connector, Output, _parse, catalog_for
from integration_tests.image import PODMAN_MISSING, connector_image, podman_installed, run_in_image

pytestmark = [pytest.mark.image_tests, pytest.mark.skipif(not podman_installed(), reason=PODMAN_MISSING)]

CONTAINER_FILES = "/secrets"
# A stream of each family: a catalogue stream, an export stream, users (its schema is discovered
# from the project's fields) and templates (one request per template type and medium).
READ_STREAMS = ["lists", "email_send", "users", "templates"]
# Development tools of this repository and the main job's dependencies: never in the image.
NOT_SHIPPED_MODULES = ["iterable_emulator", "iterable_to_duckdb", "airbyte", "duckdb"]
NOT_SHIPPED_DISTRIBUTIONS = ["source-iterable-dev", "airbyte", "duckdb"]


class ImageConnector(Connector):
    """The `Connector` harness, but each command runs in the image: its files are mounted
    read-only under /secrets and the arguments name them there."""

    def __init__(self, workdir: Path, image: str) -> None:
        super().__init__(workdir)
        self.image = image

    def run(self, *args: str, timeout: float = ALL_STREAMS_TIMEOUT_S) -> Output:
        files: Dict[str, Path] = {}
        arguments: List[str] = []
        for argument in args:
            path = Path(argument)
            if path.parent == self.workdir and path.is_file():
                files[f"{CONTAINER_FILES}/{path.name}"] = path
                argument = f"{CONTAINER_FILES}/{path.name}"
            arguments.append(argument)
        completed = run_in_image(self.image, arguments, read_only_files=files, timeout=timeout)
        return Output(completed.returncode, _parse(completed.stdout), completed.stderr)


@pytest.fixture(scope="module")
def image() -> str:
    return connector_image()


@pytest.fixture
def in_image(image, tmp_path) -> ImageConnector:
    (tmp_path / "image").mkdir()
    return ImageConnector(tmp_path / "image", image)


@pytest.fixture
def cli(tmp_path) -> Connector:
    (tmp_path / "cli").mkdir()
    return Connector(tmp_path / "cli")


def only(output: Output, message_type: str) -> Dict[str, Any]:
    messages = output.of_type(message_type)
    assert output.returncode == 0 and len(messages) == 1, f"exit {output.returncode}, {output.errors}\n{output.stderr[-3000:]}"
    return messages[0]


def test_spec_in_the_image_is_the_clis(in_image, cli):
    assert only(in_image.spec(), "SPEC") == only(cli.spec(), "SPEC")


def test_check_in_the_image_succeeds_with_the_key_and_fails_without_printing_a_wrong_one(in_image, shared_config):
    wrong_key = "wrong-key-in-the-image-3c9d"

    succeeded = only(in_image.check(shared_config), "CONNECTION_STATUS")
    failed_output = in_image.check({**shared_config, "api_key": wrong_key})
    failed = only(failed_output, "CONNECTION_STATUS")

    assert succeeded["connectionStatus"]["status"] == "SUCCEEDED"
    assert failed["connectionStatus"]["status"] == "FAILED"
    assert "rejected the API key" in failed["connectionStatus"]["message"]
    assert wrong_key not in json.dumps(failed_output.messages) + failed_output.stderr


def test_discover_in_the_image_prints_the_clis_catalog(in_image, cli, shared_config):
    in_container = only(in_image.discover(shared_config), "CATALOG")

    assert len(in_container["catalog"]["streams"]) == 64
    assert in_container == only(cli.discover(shared_config), "CATALOG")


def records_by_stream(output: Output) -> Dict[str, List[str]]:
    """Each stream's records as sorted JSON texts: the order of streams read at once may vary."""
    return {stream: sorted(json.dumps(record, sort_keys=True) for record in records) for stream, records in output.records.items()}


def final_state_by_stream(output: Output) -> Dict[str, Any]:
    return {state["stream"]["stream_descriptor"]["name"]: state["stream"]["stream_state"] for state in output.final_states()}


def checkpoints_by_stream(output: Output) -> Dict[str, List[Any]]:
    """The STATE messages of each stream that reads one partition at a time, in order. A stream
    of several partitions (`templates`: one per type and medium) checkpoints them as they finish,
    in an order that varies from one run to the next, CLI or not: its final state is compared."""
    states: Dict[str, List[Any]] = {}
    for state in output.states:
        states.setdefault(state["stream"]["stream_descriptor"]["name"], []).append(state["stream"]["stream_state"])
    return {stream: sequence for stream, sequence in states.items() if not any("states" in state for state in sequence)}


@pytest.fixture(scope="module")
def reads(shared_config, image, tmp_path_factory):
    """The same incremental read of `READ_STREAMS`, once from the CLI and once in the image,
    and the same second read from each one's final state."""
    folders = {name: tmp_path_factory.mktemp(name) for name in ("cli", "image")}
    connectors = {"cli": Connector(folders["cli"]), "image": ImageConnector(folders["image"], image)}
    catalog = catalog_for(connectors["cli"].streams(shared_config), READ_STREAMS)
    outputs = {}
    for name, connector in connectors.items():
        first = connector.read(shared_config, catalog)
        outputs[name] = (first, connector.read(shared_config, catalog, state=first.final_states()))
    return outputs


def test_read_in_the_image_emits_the_clis_records(reads):
    (cli_first, _), (image_first, _) = reads["cli"], reads["image"]

    assert image_first.returncode == 0 and not image_first.errors, image_first.errors or image_first.stderr[-3000:]
    assert sorted(image_first.records) == sorted(READ_STREAMS), "every stream read in the container emitted records"
    assert records_by_stream(image_first) == records_by_stream(cli_first)


def test_read_in_the_image_emits_the_clis_state_and_resumes_from_it(reads):
    (cli_first, cli_second), (image_first, image_second) = reads["cli"], reads["image"]

    assert sorted(final_state_by_stream(image_first)) == sorted(READ_STREAMS)
    assert final_state_by_stream(image_first) == final_state_by_stream(cli_first)
    assert sorted(checkpoints_by_stream(image_first)) == ["email_send", "lists", "users"]
    assert checkpoints_by_stream(image_first) == checkpoints_by_stream(cli_first)
    assert image_second.returncode == 0 and not image_second.errors, image_second.errors
    assert records_by_stream(image_second) == records_by_stream(cli_second), "an incremental read from that state"
    assert final_state_by_stream(image_second) == final_state_by_stream(cli_second)


def test_the_connector_runs_as_the_non_root_airbyte_user(image):
    whoami = "import os, pwd; print(os.getuid(), pwd.getpwuid(os.getuid()).pw_name)"

    completed = run_in_image(image, ["-c", whoami], entrypoint="/airbyte/venv/bin/python")

    uid, name = completed.stdout.split()
    assert name == "airbyte" and int(uid) != 0, completed.stderr


def test_the_image_holds_the_connector_and_nothing_of_the_development_install(image):
    """The emulator, the main job, PyAirbyte and DuckDB stay out: not importable, not installed,
    and no file or folder of theirs anywhere in the image."""
    probe = (
        "import importlib.metadata, importlib.util, json, os;"
        f"names = {NOT_SHIPPED_MODULES + ['source_iterable']!r};"
        "found = [os.path.join(d, n) for top in ('/airbyte', '/usr', '/opt', '/root', '/home', '/tmp')"
        " for d, dirs, files in os.walk(top) for n in dirs + files"
        " if n in ('iterable_emulator', 'iterable_to_duckdb', 'iterable-to-duckdb') or n.startswith('duckdb')];"
        "print(json.dumps({'importable': {n: importlib.util.find_spec(n) is not None for n in names},"
        " 'distributions': sorted(d.metadata['Name'].lower() for d in importlib.metadata.distributions()),"
        " 'found': found}))"
    )

    completed = run_in_image(image, ["-c", probe], entrypoint="/airbyte/venv/bin/python")

    contents = json.loads(completed.stdout)
    assert contents["importable"].pop("source_iterable") and "airbyte-source-iterable" in contents["distributions"], (
        f"the connector's distribution is installed: {contents['distributions']}"
    )
    assert {
        "importable": sorted(module for module, importable in contents["importable"].items() if importable),
        "installed": sorted(set(NOT_SHIPPED_DISTRIBUTIONS) & set(contents["distributions"])),
        "files": contents["found"],
    } == {"importable": [], "installed": [], "files": []}, "the image holds the connector and its dependencies only"
