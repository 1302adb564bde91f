"""Every size, depth and time limit a request, a definition and a run meet: the settings block
``PROMPTPILOT_LIMITS__*`` (read by ``promptpilot.settings``), shared by the API door checks and
the definition checks."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LimitsSettings(BaseModel):
    """Every size, depth and time limit, with its default (README: Configuration, Limits).

    The door limits are checked by the API before anything is written; the run limits travel
    in each run's input (``schema.run.RunLimits``), so a replay applies the same ones.
    """

    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body the API reads (413 ``request_too_large``)."""
    max_json_depth: int = Field(default=64, ge=4, le=512)
    """Deepest nesting of objects and arrays in a request body (422 ``json_too_deep``)."""
    max_definition_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest workflow definition, as compact JSON (413 ``definition_too_large``)."""
    max_steps: int = Field(default=500, ge=1)
    """Most steps in one definition, nested steps included (422 ``too_many_steps``)."""
    max_run_input_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest run input, as compact JSON (413 ``input_too_large``)."""
    max_backfill_runs: int = Field(default=1000, ge=1)
    """Most runs one schedule backfill may start (422 ``backfill_too_large``)."""
    template_max_output_chars: int = Field(default=8_000_000, ge=1)
    """Longest text a template may render (step fails ``template_limit``): as large as a step
    output may be, so a page one step fetched fits in the next step's prompt."""
    template_max_operations: int = Field(default=100_000, ge=100)
    """Render work budget: loop iterations plus calls. Counted, not timed, so a replay agrees
    (about 0.1 s of CPU at the default; the step fails ``template_limit``)."""
    max_step_output_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest output of one step, as JSON (step fails ``output_too_large``)."""
    max_payload_bytes: int = Field(default=1_900_000, ge=1024)
    """Largest single payload handed to Temporal (its own limit is 2 MB): over it the step,
    or the run, fails ``payload_too_large`` at once instead of retrying a workflow task."""
