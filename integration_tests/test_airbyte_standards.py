"""The CDK's standard source tests (spec, check, discover, read) against the project's emulator.

The scenarios are the configs listed in `acceptance-test-config.yml`. They point at the emulator,
whose port is only known once it runs, so the files in `standard_test_configs/` are templates:
the class reads each config from a copy in a temporary directory, which `emulator_configs` fills
in with the emulator's base URL and key before the first test runs.

No `pytest_plugins` here: the CDK's plugin would parametrize a `scenario` argument of any test in
the session. This module's own `pytest_generate_tests` applies it to this module's class only.
"""

import os
import shutil
import tempfile
from pathlib import Path
from string import Template
from typing import Any, Callable, Iterator, List, Type

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase, pytest_hooks

from iterable_emulator import IterableEmulator
from source_iterable import SourceIterable

CONNECTOR_ROOT = Path(__file__).resolve().parent.parent
CONFIG_TEMPLATES = CONNECTOR_ROOT / "integration_tests" / "standard_test_configs"
# Per process, so that two test runs in one working tree never read each other's emulator.
RENDERED_CONFIGS = Path(tempfile.gettempdir()) / f"source-iterable-standard-tests-{os.getpid()}"

IMAGE_TESTS_SKIP_REASON = (
    "The CDK's image tests build Airbyte's monorepo Dockerfile template (downloaded from GitHub), "
    "not this repository's Dockerfile, and their containers could not reach the emulator on the "
    "host's 127.0.0.1. unit_tests/test_packaging.py lints the Dockerfile, installs the package as "
    "the image does, and builds and runs the image where a Docker engine runs."
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.cls is not None and issubclass(metafunc.cls, SourceTestSuiteBase):
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


def skip_inherited_image_tests(reason: str) -> Callable[[Type[SourceTestSuiteBase]], Type[SourceTestSuiteBase]]:
    """Replaces every inherited test marked `image_tests` by a test that is skipped with `reason`.

    The replacement takes no fixtures, so it is collected once, not once per scenario, and needs
    none of the CDK plugin's command-line options.
    """

    def skipped_test(name: str) -> Callable[[Any], None]:
        @pytest.mark.image_tests
        @pytest.mark.skip(reason=reason)
        def test(self: Any) -> None:
            """Skipped: see `IMAGE_TESTS_SKIP_REASON`."""

        test.__name__ = test.__qualname__ = name
        return test

    def decorate(cls: Type[SourceTestSuiteBase]) -> Type[SourceTestSuiteBase]:
        for name in [name for name in dir(cls) if name.startswith("test_")]:
            if any(mark.name == "image_tests" for mark in getattr(getattr(cls, name), "pytestmark", [])):
                setattr(cls, name, skipped_test(name))
        return cls

    return decorate


@skip_inherited_image_tests(IMAGE_TESTS_SKIP_REASON)
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
