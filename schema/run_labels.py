"""What the Temporal UI's workflow list shows of a run: its static summary and details.

Set once at start wherever a run starts (the API's dispatcher, triggered starts, child runs,
previews), so a row of the list says which workflow, version and trigger the run is. Ids
and names only: never the run's input, which may hold what its owner keeps private.
"""

from __future__ import annotations

from schema.run import RunWorkflowInput

PREVIEW_TRIGGER = "preview"
"""The trigger (and ``PromptPilotTrigger`` search attribute) of preview runs."""


def run_summary(run: RunWorkflowInput) -> str:
    """One line: ``slug vN (trigger)``; a preview of an unsaved definition has no version."""
    version = f"v{run.workflow_version}" if run.workflow_version else "unsaved"
    return f"{run.workflow_slug} {version} ({run.trigger})"


def run_details(run: RunWorkflowInput) -> str:
    """Markdown lines naming the workflow, its version, the trigger and where the run came
    from (a trigger, a parent run's step, a rerun's source)."""
    version = str(run.workflow_version) if run.workflow_version else "unsaved definition"
    lines = [f"**{run.definition.name}** (`{run.workflow_slug}`)",
             f"- version: {version}",
             f"- trigger: {run.trigger}" + (f" (`{run.trigger_id}`)" if run.trigger_id else ""),
             f"- environment: {run.environment}",
             f"- run: `{run.run_id}`"]
    if run.parent_run_id:
        lines.append(f"- parent run: `{run.parent_run_id}`, step `{run.parent_step_id}`")
    if run.source_run_id:
        lines.append(f"- rerun of `{run.source_run_id}`"
                     + (f" from step `{run.from_step_id}`" if run.from_step_id else ""))
    if run.trigger == PREVIEW_TRIGGER:
        lines.append("- a preview: not mirrored, not in the runs list")
    return "\n".join(lines)
