"""The export engine: Iterable's export read in adaptive windows, exactly once, a checkpoint per window.

- `retriever.AdaptiveExportWindows`: the CDK component, the loop over a stream's windows.
- `plan.ExportPlan`: the next window, and whether an export job or the sync export reads it.
- `windows.WindowSizer`: how long the next window is.
- `sync_export.SyncExport` / `jobs.ExportJobReader`: one window's lines, from `export/data.json`
  or from an export job; `jobs.ExportJobs`: the jobs one read started, to cancel them.
- `window_read.WindowRead`: one window's records, as RECORD messages.
- `recovery.DropRecovery`: retries after dropped connections without emitting a record twice.
- `records.RecordShaper`: the record contract plus the primary key of export records.
- `lines`: lines of a streamed body.
- `cdk_adapter`: the only places that reach into the CDK beyond its component interfaces.
"""
