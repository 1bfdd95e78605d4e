"""What `SourceIterable` hands its components for one read, inside the config they are built with.

Components are built by the CDK from the manifest and receive the config, never the source, so
the two things of a read that only the source knows travel under private keys of that config
(the CDK does the same for injected manifests): the `users` schema of the configured catalog,
and the registry of the export jobs this read starts. They are not user settings, and
`without_read_context` takes them out wherever the config is written (the CDK writes it to a
temporary file on every command).
"""

from typing import Any, Dict, Mapping, Optional

from airbyte_cdk.models import ConfiguredAirbyteCatalog

from source_iterable.export.jobs import ExportJobs

CONFIGURED_USERS_SCHEMA = "__configured_users_schema"
EXPORT_JOBS = "__export_jobs"


def with_read_context(
    config: Optional[Mapping[str, Any]], catalog: Optional[ConfiguredAirbyteCatalog], export_jobs: ExportJobs
) -> Optional[Dict[str, Any]]:
    """`config` plus the read's context; None stays None (spec needs no config)."""
    if config is None:
        return None
    context: Dict[str, Any] = {**config, EXPORT_JOBS: export_jobs}
    users = next((s.stream.json_schema for s in (catalog.streams if catalog else []) if s.stream.name == "users"), None)
    if users and users.get("properties"):
        context[CONFIGURED_USERS_SCHEMA] = users
    return context


def without_read_context(config: Mapping[str, Any]) -> Dict[str, Any]:
    return {name: value for name, value in config.items() if name not in (CONFIGURED_USERS_SCHEMA, EXPORT_JOBS)}


def configured_users_schema(config: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The `users` schema the destination was given, if this is a read with a catalog."""
    return config.get(CONFIGURED_USERS_SCHEMA)


def export_jobs(config: Mapping[str, Any]) -> ExportJobs:
    """The read's export-job registry (a private one where no source made the config, e.g. tests)."""
    registry = config.get(EXPORT_JOBS)
    return registry if isinstance(registry, ExportJobs) else ExportJobs()
