"""The Iterable source: the declarative manifest next to this file, loaded by absolute path."""

from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

from source_iterable.export.jobs import ExportJobs
from source_iterable.read_context import with_read_context, without_read_context

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")


class SourceIterable(YamlDeclarativeSource):
    """The connector. One instance serves one command (spec, check, discover or read).

    Attributes:
        export_jobs: the export jobs this read starts, so that `run()` can cancel them.
    """

    # On CDK 7 the config, catalog and state must reach the constructor: check, discover and
    # read use what was given here and ignore what the entrypoint passes to them later.
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        **kwargs: Any,
    ) -> None:
        self.export_jobs = ExportJobs()
        super().__init__(
            catalog=catalog,
            config=with_read_context(config, catalog, self.export_jobs),
            state=state,
            path_to_yaml=str(MANIFEST_PATH),
            **kwargs,
        )

    @staticmethod
    def write_config(config: Mapping[str, Any], config_path: str) -> None:
        # The CDK writes the config each command uses; the read's context is not configuration.
        YamlDeclarativeSource.write_config(without_read_context(config), config_path)
