"""A consumer's flow through a Python client generated from the served OpenAPI document
(openapi-python-client), written from the document alone: no casts, no `# type: ignore`.
scripts/clients type-checks it (`mypy --strict`) and runs it against a live `serve`.

    NEO_URL=http://127.0.0.1:8080 NEO_KEY=neo_sk_live_... python flow.py
"""

import os
import time
from collections.abc import Callable
from typing import TypeVar

from neo_api import AuthenticatedClient
from neo_api.api.agents import create_agent
from neo_api.api.backfills import (
    cancel_backfill,
    create_backfill,
    get_backfill,
    list_backfill_items,
    list_backfills,
    pause_backfill,
    rerun_failed_backfill,
    resume_backfill,
)
from neo_api.models import (
    BackfillRunState,
    CreateAgentRequest,
    CreateBackfillRequest,
    DataEnvelopeCreateBackfillResponse,
    DataEnvelopePublicAgent,
    DataEnvelopePublicBackfill,
    DataEnvelopeSignalResponse,
    DataEnvelopeVecPublicBackfill,
    DataEnvelopeVecPublicBackfillItem,
    EntityIdsFilter,
    ErrorEnvelope,
    ItemStatus,
    PublicBackfill,
    SignalResponseSignal,
    SimulatedExecutor,
    SimulatedExecutorType,
    WebhookExecutor,
    WebhookExecutorType,
)
from neo_api.types import UNSET, Unset

T = TypeVar("T")


def ok(parsed: object, cls: type[T], what: str) -> T:
    """The parsed answer if it is a `cls`, else an error naming the envelope's code."""
    if isinstance(parsed, cls):
        return parsed
    if isinstance(parsed, ErrorEnvelope):
        raise RuntimeError(f"{what}: {parsed.error.code}: {parsed.error.message}")
    raise RuntimeError(f"{what}: unexpected answer {parsed!r}")


def check(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"flow: {what}")


TERMINAL = {BackfillRunState.COMPLETED, BackfillRunState.CANCELLED, BackfillRunState.FAILED}


def wait_for(
    neo: AuthenticatedClient, backfill_id: str, done: Callable[[BackfillRunState], bool]
) -> PublicBackfill:
    deadline = time.monotonic() + 60
    while True:
        r = get_backfill.sync_detailed(backfill_id, client=neo)
        b = ok(r.parsed, DataEnvelopePublicBackfill, "get backfill").data
        if done(b.state):
            return b
        if time.monotonic() > deadline:
            raise RuntimeError(f"backfill {backfill_id} still {b.state} after 60 s")
        time.sleep(0.1)


def main() -> None:
    key = os.environ.get("NEO_KEY")
    if not key:
        raise SystemExit("set NEO_KEY to an API key of the service at NEO_URL")
    neo = AuthenticatedClient(
        base_url=os.environ.get("NEO_URL", "http://127.0.0.1:8080"), token=key
    )
    run = str(time.time_ns())

    # A workflow with a simulated executor that fails about a third of the entities.
    agent = ok(
        create_agent.sync_detailed(
            client=neo,
            body=CreateAgentRequest(
                name=f"py flow {run}",
                executor=SimulatedExecutor(
                    type_=SimulatedExecutorType.SIMULATED,
                    latency_ms=0,
                    failure_rate=0.3,
                    seed=7,
                ),
            ),
        ).parsed,
        DataEnvelopePublicAgent,
        "create agent",
    ).data
    check(isinstance(agent.executor, SimulatedExecutor), "the executor reads back as simulated")

    # A backfill over 40 explicit entities, polled to COMPLETED.
    entity_ids = [f"py-{run}-{i}" for i in range(40)]
    created = ok(
        create_backfill.sync_detailed(
            client=neo,
            body=CreateBackfillRequest(
                target_workflow_id=agent.id,
                filter_spec=EntityIdsFilter(entity_ids=entity_ids),
                max_in_flight=10,
            ),
        ).parsed,
        DataEnvelopeCreateBackfillResponse,
        "create backfill",
    ).data
    check(created.cost_estimate.total_entities == 40, "the estimate counts 40 entities")
    spec = created.backfill.filter_spec
    check(
        isinstance(spec, EntityIdsFilter) and len(spec.entity_ids) == 40,
        "filter_spec reads back as the 40 ids",
    )
    source = wait_for(neo, created.backfill.id, lambda s: s in TERMINAL)
    check(source.state == BackfillRunState.COMPLETED, f"the backfill completed ({source.state})")
    check(source.failed_count > 0 and source.succeeded_count > 0, "some failed, some succeeded")

    # Its failed items, page by page.
    failed = 0
    cursor: str | Unset = UNSET
    while True:
        page = ok(
            list_backfill_items.sync_detailed(
                source.id, client=neo, status=[ItemStatus.FAILED], page_size=5, cursor=cursor
            ).parsed,
            DataEnvelopeVecPublicBackfillItem,
            "list failed items",
        )
        failed += len(page.data)
        check(all(i.status == ItemStatus.FAILED for i in page.data), "only failed items")
        next_cursor = page.meta.pagination.next_cursor
        if next_cursor is None:
            break
        cursor = next_cursor
    check(failed == source.failed_count, f"{failed} failed items, failed_count {source.failed_count}")

    # Rerun the failed ones as a child backfill.
    rerun = ok(
        rerun_failed_backfill.sync_detailed(source.id, client=neo).parsed,
        DataEnvelopeCreateBackfillResponse,
        "rerun failed",
    ).data
    check(rerun.backfill.parent_backfill_run_id == source.id, "the child names its source")
    check(rerun.cost_estimate.total_entities == source.failed_count, "the child's estimate")
    child = wait_for(neo, rerun.backfill.id, lambda s: s in TERMINAL)
    check(child.total_items == source.failed_count, "the child's snapshot is the failed entities")

    # The backfill list, one per page: the cursor leads to the next one.
    first = ok(
        list_backfills.sync_detailed(client=neo, page_size=1).parsed,
        DataEnvelopeVecPublicBackfill,
        "list backfills",
    )
    after = first.meta.pagination.next_cursor
    check(len(first.data) == 1 and after is not None, "a first page of one with a cursor")
    second = ok(
        list_backfills.sync_detailed(
            client=neo, page_size=1, cursor=after if after is not None else UNSET
        ).parsed,
        DataEnvelopeVecPublicBackfill,
        "list backfills, page 2",
    )
    check(len(second.data) == 1 and second.data[0].id != first.data[0].id, "another backfill")

    # Pause and resume a slow backfill, then cancel it.
    slow = ok(
        create_agent.sync_detailed(
            client=neo,
            body=CreateAgentRequest(
                name=f"py flow slow {run}",
                executor=SimulatedExecutor(type_=SimulatedExecutorType.SIMULATED, latency_ms=300),
            ),
        ).parsed,
        DataEnvelopePublicAgent,
        "create slow agent",
    ).data
    running = ok(
        create_backfill.sync_detailed(
            client=neo,
            body=CreateBackfillRequest(
                target_workflow_id=slow.id,
                filter_spec=EntityIdsFilter(entity_ids=entity_ids[:20]),
                max_in_flight=1,
            ),
        ).parsed,
        DataEnvelopeCreateBackfillResponse,
        "create slow backfill",
    ).data.backfill
    paused = ok(
        pause_backfill.sync_detailed(running.id, client=neo).parsed,
        DataEnvelopeSignalResponse,
        "pause",
    ).data
    check(paused.signal == SignalResponseSignal.PAUSE, "the pause signal is acknowledged")
    check(
        wait_for(neo, running.id, lambda s: s == BackfillRunState.PAUSED).state
        == BackfillRunState.PAUSED,
        "the backfill reads PAUSED",
    )
    ok(resume_backfill.sync_detailed(running.id, client=neo).parsed, DataEnvelopeSignalResponse, "resume")
    check(
        wait_for(neo, running.id, lambda s: s != BackfillRunState.PAUSED).state
        == BackfillRunState.RUNNING,
        "the backfill runs again",
    )
    ok(cancel_backfill.sync_detailed(running.id, client=neo).parsed, DataEnvelopeSignalResponse, "cancel")
    check(
        wait_for(neo, running.id, lambda s: s in TERMINAL).state == BackfillRunState.CANCELLED,
        "the backfill is cancelled",
    )

    # Typed errors: a backfill that does not exist, and a workflow the service refuses.
    missing = get_backfill.sync_detailed("bf_missing", client=neo)
    check(missing.status_code == 404, f"404 for a missing backfill ({missing.status_code})")
    error = ok(missing.parsed, ErrorEnvelope, "the 404's envelope").error
    check(error.code == "backfill_not_found", f"backfill_not_found ({error.code})")
    refused = create_agent.sync_detailed(
        client=neo,
        body=CreateAgentRequest(
            name="refused",
            executor=WebhookExecutor(
                type_=WebhookExecutorType.WEBHOOK,
                url="ftp://example.com/hook",
                secret="0123456789abcdef",
            ),
        ),
    )
    check(refused.status_code == 422, f"a bad executor answers 422 ({refused.status_code})")
    details = ok(refused.parsed, ErrorEnvelope, "the 422's envelope").error.details
    check(
        not isinstance(details, Unset) and details.field == "executor.url",
        "the error names executor.url",
    )

    print(
        f"python flow: ok (backfill {source.id}: {source.succeeded_count} succeeded, "
        f"{source.failed_count} failed; rerun {child.id})"
    )


if __name__ == "__main__":
    main()
