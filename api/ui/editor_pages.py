"""The definition editor: a new workflow, or a new version of one (JSON in a textarea).

The page only holds the text; saving is the API's own `POST /api/workflows` or
`PUT /api/workflows/{slug}` (called by ui.js), so the inspector checks a definition exactly as
the API does and shows the API's problems by JSON pointer.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.deps import StateDep
from api.presenters import readable_definition
from api.ui.views import UiKey, not_found_page, page

router = APIRouter(prefix="/ui")

STARTER = {
    "id": "my-workflow",
    "name": "My workflow",
    "variables": [{"name": "topic", "type": "string", "required": True,
                   "sampleValue": "tides"}],
    "steps": [{"id": "outline", "type": "transform",
               "expression": "{topic: input.topic}"}],
}


@router.get("/workflows/new", response_class=HTMLResponse)
async def new_workflow_page(request: Request, key: UiKey) -> HTMLResponse:
    """An editor holding a small starting definition; saving stores version 1."""
    return page(request, "editor.html", key, title="New workflow", nav="workflows",
                workflow=None, text=json.dumps(STARTER, indent=2))


@router.get("/workflows/{slug}/edit", response_class=HTMLResponse)
async def edit_workflow_page(slug: str, request: Request, state: StateDep,
                             key: UiKey) -> HTMLResponse:
    """The current definition in the editor; saving stores the next version."""
    row = await state.store.get_workflow(key.environment, slug)
    version = await state.store.get_version(row.id, row.current_version) if row else None
    if row is None or version is None:
        return not_found_page(request, key, f"workflow '{slug}'")
    text = json.dumps(readable_definition(version.definition), indent=2, ensure_ascii=False)
    return page(request, "editor.html", key, title=f"Edit {row.name}", nav="workflows",
                workflow=row, text=text)
