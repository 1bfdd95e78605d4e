"""The Iterable source: the declarative manifest next to this file, loaded by absolute path."""

from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

from source_iterable.user_fields import ConfiguredUsersSchema

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")


class SourceIterable(YamlDeclarativeSource):
    # On CDK 7 the config, catalog and state must reach the constructor: check, discover and
    # read use what was given here and ignore what the entrypoint passes to them later.
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        **kwargs: Any,
    ) -> None:
        ConfiguredUsersSchema.set_from(catalog)
        super().__init__(
            catalog=catalog,
            config=config,
            state=state,
            path_to_yaml=str(MANIFEST_PATH),
            **kwargs,
        )
