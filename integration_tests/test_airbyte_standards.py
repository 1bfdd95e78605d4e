"""The CDK's standard source tests (spec, check, discover, read) against the project's emulator.

The scenarios are the configs listed in `acceptance-test-config.yml`. They point at the emulator,
whose port is only known once it runs, so the files in `standard_test_configs/` are templates:
the class reads each config from a copy in a temporary directory, which `emulator_configs` fills
in with the emulator's base URL and key before the first test runs.

No `pytest_plugins` here: the CDK's plugin would parametrize a `scenario` argument of any test in
the session. This module's own `pytest_generate_tests` applies it to this module's class only,
and this module gives the fixtures the plugin's options would.

The CDK's image tests (marked `image_tests`) run the image built from this repository's
Dockerfile (integration_tests/image.py), through a `docker` that is podman with host networking,
so their containers reach the emulator on 127.0.0.1. Where podman is not installed they are
skipped, saying how to install it. One does not apply and is not collected:
`test_docker_image_spec_backward_compatibility` compares the spec with the one Airbyte's registry
publishes for `dockerRepository`, which is Airbyte's own Iterable connector (another definitionId,
another spec), and the registry is not reachable from our machines.
"""

import functools
import os
import shutil
import tempfile
from pathlib import Path
from string import Template
from typing import Any, Callable, Iterator, List, Literal, Type

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase, pytest_hooks

from integration_tests.image import PODMAN_MISSING, connector_image, docker_cli_shim, podman_installed
from iterable_emulator import IterableEmulator
from source_iterable import SourceIterable

CONNECTOR_ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEMPLATES = CONNECTOR_ROOT / "integration_tests" / "standard_test_configs"
# Per process, so that two test runs in one working tree never read each other's emulator.
RENDERED_CONFIGS = Path(tempfile.gettempdir()) / f"source-iterable-standard-tests-{os.getpid()}"

# The CDK's image tests that do not apply here (see the module docstring).
NOT_APPLICABLE_IMAGE_TESTS = {"test_docker_image_spec_backward_compatibility"}
# The command each CDK image test runs in the container, and whether it needs a config that is
# expected to work. An image test is collected only for the scenarios that run its command: the
# CDK would skip the others (a config listed under `connection` only runs `check`).
IMAGE_TEST_COMMANDS = {
    "test_docker_image_build_and_check": ("check", False),
    "test_docker_image_build_and_config_matches_spec": ("spec", False),
    "test_docker_image_build_and_discover": ("discover", True),
    "test_docker_image_build_and_read": ("read", True),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.cls is None or not issubclass(metafunc.cls, SourceTestSuiteBase):
        return
    if metafunc.function.__name__ in IMAGE_TEST_COMMANDS and "scenario" in metafunc.fixturenames:
        command, needs_working_config = IMAGE_TEST_COMMANDS[metafunc.function.__name__]
        scenarios = [
            scenario
            for scenario in metafunc.cls.get_scenarios()
            if scenario.runs(command) and not (needs_working_config and scenario.expected_outcome.expect_exception())
        ]
        metafunc.parametrize("scenario", scenarios, ids=[str(scenario) for scenario in scenarios])
    else:
        pytest_hooks.pytest_generate_tests(metafunc)


@pytest.fixture(scope="module")
def emulator_configs(shared_emulator: IterableEmulator) -> Iterator[Path]:
    """Writes each config template with the emulator's base URL and key filled in."""
    RENDERED_CONFIGS.mkdir(parents=True, exist_ok=True)
    for template in CONFIG_TEMPLATES.glob("*.json"):
        rendered = Template(template.read_text()).substitute(
            EMULATOR_BASE_URL=shared_emulator.base_url, EMULATOR_API_KEY=shared_emulator.api_key
        )
        (RENDERED_CONFIGS / template.name).write_text(rendered)
    yield RENDERED_CONFIGS
    shutil.rmtree(RENDERED_CONFIGS, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_is_podman() -> Iterator[None]:
    """`docker` on PATH is podman with this machine's settings, for the CDK's `docker run`s."""
    if not podman_installed():
        pytest.skip(PODMAN_MISSING)
    with docker_cli_shim() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        yield


@pytest.fixture(scope="module")
def connector_image_override(docker_is_podman: None) -> str:
    """The image the CDK's image tests run, instead of one they would build (`--connector-image`)."""
    return connector_image()


@pytest.fixture
def connector_base_image_override() -> None:
    return None


@pytest.fixture
def read_from_streams() -> Literal["default"]:
    """The streams of `metadata.yaml`'s `suggestedStreams`, or all of them (it has none)."""
    return "default"


@pytest.fixture
def read_scenarios() -> Literal["default"]:
    return "default"


def run_inherited_image_tests_with_podman(cls: Type[SourceTestSuiteBase]) -> Type[SourceTestSuiteBase]:
    """Replaces every inherited test marked `image_tests` by one that runs it with `docker_is_podman`
    (without the CDK's skip where no `docker` command exists), and drops those that do not apply."""

    def with_podman(test: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(test)
        def run(self: Any, *args: Any, **kwargs: Any) -> None:
            test(self, *args, **kwargs)

        run.pytestmark = [pytest.mark.image_tests, pytest.mark.usefixtures("docker_is_podman")]  # type: ignore[attr-defined]
        return run

    for name in [name for name in dir(cls) if name.startswith("test_")]:
        test = getattr(cls, name)
        if any(mark.name == "image_tests" for mark in getattr(test, "pytestmark", [])):
            setattr(cls, name, None if name in NOT_APPLICABLE_IMAGE_TESTS else with_podman(test))
    return cls


@run_inherited_image_tests_with_podman
@pytest.mark.usefixtures("emulator_configs")
class TestSourceIterableStandards(SourceTestSuiteBase):
    connector_name = "source-iterable"

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return CONNECTOR_ROOT

    @classmethod
    def get_scenarios(cls) -> List[ConnectorTestScenario]:
        scenarios = []
        for scenario in super().get_scenarios():
            template = CONNECTOR_ROOT / scenario.config_path
            assert template.parent == CONFIG_TEMPLATES, f"{scenario.config_path}: configs of the standard tests live in {CONFIG_TEMPLATES}"
            scenarios.append(scenario.model_copy(update={"config_path": RENDERED_CONFIGS / template.name}))
        return scenarios

    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> SourceIterable:
        # CDK 7 only honours the config given to the constructor (the CDK's default creates the
        # source without one).
        config = scenario.get_config_dict(connector_root=CONNECTOR_ROOT, empty_if_missing=True) if scenario else {}
        return SourceIterable(catalog=None, config=config, state=None)
