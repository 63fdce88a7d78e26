"""`raspberry alerts`: the Prefect automations that tell someone when the nightly build goes wrong.

Two automations post to one webhook: a build_dataset run Failed or Crashed, and no Completed run
of the nightly deployment in 26 hours (a night that never started alerts too). The webhook URL
often carries a token, so it is kept in the notification block's secrets, never in plain fields.
Running the command again replaces both automations and the block.
"""

from __future__ import annotations

from datetime import timedelta

from prefect import get_client
from prefect.automations import Automation, EventTrigger, Posture, SendNotification
from prefect.blocks.notifications import CustomWebhookNotificationBlock

from raspberry.errors import RaspberryError

BLOCK = "raspberry-alerts"
FLOW = "build_dataset"
FAILED = "raspberry: build failed or crashed"
STALE = "raspberry: no completed nightly build"


def _replace(automation: Automation) -> Automation:
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(automation.name):
            client.delete_automation(old.id)
    return automation.create()


def create_alerts(webhook_url: str, deployment: str, stale_hours: float) -> list[Automation]:
    """Save the webhook block and (re)create both automations; returns them."""
    with get_client(sync_client=True) as client:
        found = [d for d in client.read_deployments() if d.name == deployment]
    if not found:
        raise RaspberryError(
            f"no deployment named '{deployment}' on the Prefect server: deploy it first "
            "(`prefect deploy --name nightly-build`, or `raspberry serve`)"
        )
    block = CustomWebhookNotificationBlock(
        name=BLOCK,
        url="{{webhook_url}}",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        secrets={"webhook_url": webhook_url},
    )
    block_id = block.save(BLOCK, overwrite=True)
    failed = Automation(
        name=FAILED,
        description="A Raspberry build run ended Failed or Crashed.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.name": FLOW,
            },
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject="Raspberry build {{ flow_run.name }}: {{ flow_run.state.name }}",
                body=(
                    "Flow run {{ flow_run.name }} ended {{ flow_run.state.name }}: "
                    "{{ flow_run.state.message }}. `raspberry status <build id>` names the failed "
                    "shards; `raspberry rerun <build id>` recomputes them alone."
                ),
            )
        ],
    )
    hours = f"{stale_hours:g}"
    stale = Automation(
        name=STALE,
        description=f"No Completed run of deployment {deployment} in {hours} hours.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Completed"},
            match_related={"prefect.resource.id": f"prefect.deployment.{found[0].id}"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(hours=stale_hours),
        ),
        actions=[
            SendNotification(
                block_document_id=block_id,
                subject=f"Raspberry: no completed nightly build in {hours} hours",
                body=f"Deployment {deployment} has not completed a run in {hours} hours.",
            )
        ],
    )
    return [_replace(failed), _replace(stale)]
