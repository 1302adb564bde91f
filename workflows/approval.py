"""`approval` steps: wait for a person's decision, sent as the interpreter's `decide` update.

While waiting the step is recorded ``waiting`` (the run stays ``running``) and the workflow's
current details in the Temporal UI say which step waits and how to answer. ``timeoutSeconds``
ends the wait with ``onTimeout`` (``approve``, ``reject`` or ``fail``); a rejection fails the
step unless ``onReject`` is ``continue``. The output records the decision, the comment, who
decided (the API key's id and name) and when. Previews (mirror off) do not wait: they approve.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.control import ApprovalDecision
    from schema.definition import ApprovalStep
    from schema.run import StepError, StepRecord

from definition.templates import render
from workflows.outcome import OutcomeFailed, StepOutcome

if TYPE_CHECKING:
    from workflows.scope import Runner


def _output(decision: ApprovalDecision, timed_out: bool = False) -> dict[str, Any]:
    return {"decision": decision.decision, "comment": decision.comment, "by": decision.by,
            "at": decision.at.isoformat() if decision.at else None, "timedOut": timed_out}


async def run_approval(runner: Runner, step: ApprovalStep, mapped: dict[str, Any],
                       context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Wait for the decision (or the timeout) and turn it into the step's outcome."""
    message = render(step.message, mapped, context, runner.scope.limits) if step.message \
        else None
    rendered = {"message": message, "timeoutSeconds": step.timeout_seconds,
                "onTimeout": step.on_timeout, "onReject": step.on_reject}
    if not runner.scope.approvals or not runner.scope.mirror:
        auto = ApprovalDecision(step_id=step.id, decision="approved", by={"name": "preview"},
                                comment="approved automatically: previews do not wait",
                                at=workflow.now())
        return StepOutcome(output=_output(auto), rendered=rendered, cost=0.0)
    record.status = "waiting"
    record.rendered = rendered
    runner.waiting[step.id] = message or ""
    await runner.mirror_step(record)
    workflow.set_current_details(
        f"waiting for approval of step '{step.id}'{f': {message}' if message else ''} "
        f"(POST /api/workflows/runs/{runner.scope.run_id}/steps/{step.id}/approve or /reject)")
    timed_out = False
    try:
        await workflow.wait_condition(
            lambda: step.id in runner.decisions,
            timeout=timedelta(seconds=step.timeout_seconds) if step.timeout_seconds else None,
            timeout_summary=f"approval timeout of {step.id}")
    except TimeoutError:
        timed_out = step.id not in runner.decisions
    finally:
        runner.waiting.pop(step.id, None)
        workflow.set_current_details("")
    record.status = "running"
    if timed_out:
        if step.on_timeout == "fail":
            raise OutcomeFailed(
                StepError(type="approval_timeout",
                          message=f"no decision within {step.timeout_seconds:g} s"),
                StepOutcome(output={"decision": None, "timedOut": True}, rendered=rendered))
        decision = ApprovalDecision(
            step_id=step.id, decision="approved" if step.on_timeout == "approve" else "rejected",
            by={"name": "timeout"}, at=workflow.now(),
            comment=f"no decision within {step.timeout_seconds:g} s (onTimeout: "
                    f"{step.on_timeout})")
    else:
        decision = runner.decisions[step.id]
    outcome = StepOutcome(output=_output(decision, timed_out), rendered=rendered, cost=0.0)
    if decision.decision == "rejected" and step.on_reject == "fail":
        who = (decision.by or {}).get("name") or "someone"
        raise OutcomeFailed(StepError(
            type="approval_rejected",
            message=f"rejected by {who}{f': {decision.comment}' if decision.comment else ''}"),
            outcome)
    return outcome
