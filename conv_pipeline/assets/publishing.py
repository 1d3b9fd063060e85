"""``published_reports`` (hourly) and ``published_daily``: copies of the local files in Azure Blob.

They exist only when Blob publishing is on (``CONV_PIPELINE_BLOB_ENABLED``); local files stay
the source of truth and are uploaded byte for byte after their assets wrote them. The rules
(atomic commit, retries, replacing a partition's blobs, names) are in ``core/publishing/blob.py`` and
docs/PUBLISHING.md.
"""

import dagster as dg

from conv_pipeline import keys
from conv_pipeline.assets.privacy import retention_job
from conv_pipeline.core.publishing.blob import (
    PARQUET_TABLES,
    BlobPublishError,
    PublishResult,
    daily_insight_files,
    hourly_insight_files,
    hourly_parquet_files,
    range_report_files,
)
from conv_pipeline.partitions import Partitions
from conv_pipeline.project import Project
from conv_pipeline.resources import PipelineStore
from conv_pipeline.resources.blob import BlobPublisher


def _publish(blob: BlobPublisher, container: str, files: dict, prefixes: list) -> PublishResult:
    try:
        return blob.publish(container, files, prefixes)
    except BlobPublishError as exc:
        raise dg.Failure(str(exc)) from exc


def _meta(results: list[PublishResult], blob: BlobPublisher, keys: list[str]) -> dict:
    meta: dict = {"account_url": blob.display_url, "partitions": len(keys)}
    for r in results:
        for k, v in r.as_metadata().items():
            name = f"{r.container}.{k}" if k != "container" else None
            if name:
                meta[name] = meta.get(name, 0) + v
    uploaded = sorted({f"{r.container}/{n}" for r in results for n in r.uploaded})
    if uploaded:
        meta["uploaded"] = dg.MetadataValue.md("\n".join(f"- `{n}`" for n in uploaded[:50]))
    return meta


def build_publish_assets(parts: Partitions) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=keys.PUBLISHED_REPORTS,
        deps=[keys.INSIGHT_REPORT],
        partitions_def=parts.hourly,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.PUBLISHING,
        kinds={"azure"},
        description=(
            "The hour's insight report (Markdown and JSON) in the Blob container `insights` as "
            "`reports/hourly/<day>/<HH>.md|.json`, byte-identical to the local files; with "
            "`CONV_PIPELINE_BLOB_PUBLISH_PARQUET` also the hour's Parquet partitions in "
            "`conversations` as `<table>/<day>/<HH>.parquet`."
        ),
    )
    def published_reports(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, blob: BlobPublisher
    ) -> dg.MaterializeResult:
        store = pipeline.store
        insights, parquet, insight_prefixes, parquet_prefixes = {}, {}, [], []
        for key in context.partition_keys:
            files, prefixes = hourly_insight_files(store, key)
            insights.update(files)
            insight_prefixes += prefixes
            if blob.publish_parquet:
                files, prefixes = hourly_parquet_files(store, key)
                parquet.update(files)
                parquet_prefixes += prefixes
        results = [_publish(blob, blob.insights_container, insights, insight_prefixes)]
        if blob.publish_parquet:
            results.append(_publish(blob, blob.conversations_container, parquet, parquet_prefixes))
        return dg.MaterializeResult(metadata=_meta(results, blob, context.partition_keys))

    @dg.asset(
        key=keys.PUBLISHED_DAILY,
        deps=list(keys.DAILY_OUTPUTS),
        partitions_def=parts.daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=keys.PUBLISHING,
        kinds={"azure"},
        description=(
            "The day's reports (daily summary, experiments, drift, failure clusters) as "
            "`reports/<kind>/<day>.md|.json` and its curated datasets as "
            "`datasets/<kind>/<day>/…` in the Blob container `insights`, byte-identical to the "
            "local files; a ranged run also publishes its whole-range reports "
            "(`reports/<kind>/range/<first>_<last>.*`)."
        ),
    )
    def published_daily(
        context: dg.AssetExecutionContext, pipeline: PipelineStore, blob: BlobPublisher
    ) -> dg.MaterializeResult:
        store = pipeline.store
        files, prefixes = {}, []
        for day in context.partition_keys:
            f, p = daily_insight_files(store, day)
            files.update(f)
            prefixes += p
        days = context.partition_keys
        if len(days) > 1:  # the whole-range comparison a ranged run writes (docs/IMPROVEMENT.md)
            f, p = range_report_files(store, days[0], days[-1])
            files.update(f)
            prefixes += p
        result = _publish(blob, blob.insights_container, files, prefixes)
        return dg.MaterializeResult(metadata=_meta([result], blob, context.partition_keys))

    return [published_reports, published_daily]


@dg.op(
    description=(
        "After the retention job: deletes the Blob copies of files the retention removed and "
        "replaces those it rewrote (reports without examples, Parquet without texts)."
    )
)
def sync_blob_after_retention(
    context: dg.OpExecutionContext, pipeline: PipelineStore, blob: BlobPublisher
) -> dict:
    store = pipeline.store
    results = [
        blob.mirror(blob.insights_container, store.root, ["reports/", "datasets/"]),
    ]
    if blob.publish_parquet:
        tables = [f"{t}/" for t in (*PARQUET_TABLES, "insight_reports")]
        results.append(blob.mirror(blob.conversations_container, store.tables_dir, tables))
    summary = {}
    for r in results:
        summary.update(
            {f"{r.container}.{k}": v for k, v in r.as_metadata().items() if k != "container"}
        )
    context.log.info(f"Blob copies after retention: {summary}")
    return summary


@dg.job(
    name=keys.BLOB_RETENTION_JOB, description="The Blob side of the retention (docs/PUBLISHING.md)."
)
def blob_retention_sync():
    sync_blob_after_retention()


def build_blob_retention_sensor(retention_job) -> dg.SensorDefinition:
    @dg.run_status_sensor(
        name="blob_retention_after_retention",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[retention_job],
        request_job=blob_retention_sync,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When the retention job succeeds, brings the Blob copies in line.",
    )
    def blob_retention_after_retention(context: dg.RunStatusSensorContext):
        return dg.RunRequest(run_key=f"blob-retention:{context.dagster_run.run_id}")

    return blob_retention_after_retention


def build_defs(project: Project) -> dg.Definitions:
    """Nothing unless Blob publishing is on (``CONV_PIPELINE_BLOB_ENABLED``): local files stay
    the default and the source of truth (docs/PUBLISHING.md)."""
    if not project.settings.blob.enabled:
        return dg.Definitions()
    return dg.Definitions(
        assets=build_publish_assets(project.parts),
        jobs=[blob_retention_sync],
        sensors=[build_blob_retention_sensor(retention_job)],
        resources=project.uses("pipeline", "blob"),
    )
