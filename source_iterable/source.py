"""The Iterable source: the declarative manifest next to this file, built for the command at hand."""

from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

from source_iterable.export.jobs import ExportJobs
from source_iterable.read_context import with_read_context, without_read_context

MANIFEST_PATH = Path(__file__).with_name("manifest.yaml")


@lru_cache(maxsize=1)
def _manifest_text() -> str:
    return MANIFEST_PATH.read_text()


def manifest_for(catalog: Optional[ConfiguredAirbyteCatalog], config: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The manifest with the streams this command needs.

    The CDK resolves, validates and builds every stream of the manifest it is given, which takes
    most of a process's own start-up; a read needs only the streams of its catalog, and `spec`
    (no config) none but the one `check` names. Parents are reached through `definitions`, so
    they stay whatever is kept. Discover and check get the whole manifest.
    """
    manifest: Dict[str, Any] = safe_load_yaml(_manifest_text())
    if catalog is not None and catalog.streams:
        wanted = {configured.stream.name for configured in catalog.streams}
    elif not config:
        wanted = set(manifest["check"]["stream_names"])
    else:
        return manifest
    kept = [stream for stream in manifest["streams"] if _stream_name(stream) in wanted]
    # A catalog naming a stream this manifest lacks is left to the CDK to report.
    if len(kept) == len(wanted):
        manifest["streams"] = kept
    return manifest


def _stream_name(entry: Mapping[str, Any]) -> Optional[str]:
    if "name" in entry:
        return str(entry["name"])
    reference = entry.get("$ref", "")
    return reference.rsplit("/", 1)[-1] if reference.startswith("#/definitions/streams/") else None


class SourceIterable(ConcurrentDeclarativeSource):
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
            catalog=catalog or ConfiguredAirbyteCatalog(streams=[]),
            config=with_read_context(config, catalog, self.export_jobs) or {},
            state=state or [],
            source_config=manifest_for(catalog, config),
            **kwargs,
        )

    @staticmethod
    def write_config(config: Mapping[str, Any], config_path: str) -> None:
        # The CDK writes the config each command uses; the read's context is not configuration.
        ConcurrentDeclarativeSource.write_config(without_read_context(config), config_path)
