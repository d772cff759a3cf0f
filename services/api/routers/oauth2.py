"""``/v1/accounts/oauth2``: "Sign in with Microsoft / Google" for a mailbox.

``start`` (an API caller) answers the provider's authorization URL; the browser comes
back to ``callback`` (no API token: the provider redirects it), which connects the
account and answers a page, a JSON result or problem, or a redirect to the CRM.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.api.auth import CallerDep, ResourcesDep
from services.api.errors import ApiError
from services.api.oauth2_models import OAuth2Connected, OAuth2Started, OAuth2StartInput
from services.api.oauth2_pages import (
    connected_page,
    connected_params,
    failed_page,
    failed_params,
    problem,
    return_location,
    wants_json,
)
from services.api.oauth2_signin import OAuth2SignIn
from services.api.problem_docs import problem_response, problem_responses
from services.api.problems import MEDIA_TYPE

router = APIRouter(tags=["oauth2"])

_PROBLEM = problem_response(
    "Not connected (nothing saved): an RFC 9457 problem, or an HTML page for a browser."
)


@router.post(
    "/v1/accounts/oauth2/start",
    responses=problem_responses(403, 404, 409, 422, 503),
)
async def start(
    body: OAuth2StartInput, caller: CallerDep, res: ResourcesDep, request: Request
) -> OAuth2Started:
    """Start signing a mailbox in with OAuth2 (authorization code + PKCE S256): open the
    answered URL in the user's browser. With ``account_id``, sign an existing account in
    again (``auth_failed``), keeping its settings and cursors."""
    redirect_uri = res.settings.oauth2_redirect_uri or str(request.url_for("oauth2_callback"))
    return await OAuth2SignIn(res).start(caller, body, redirect_uri)


@router.get(
    "/v1/accounts/oauth2/callback",
    name="oauth2_callback",
    response_model=OAuth2Connected,
    responses={
        200: {
            "content": {"text/html": {}},
            "description": "Connected: a page saying what, or this JSON when Accept asks for JSON.",
        },
        303: {"description": "To MAILSYNC_OAUTH2_RETURN_URL with oauth2=connected|failed."},
        400: _PROBLEM,
        403: _PROBLEM,
        409: _PROBLEM,
        422: _PROBLEM,
        502: _PROBLEM,
    },
)
async def callback(
    request: Request,
    res: ResourcesDep,
    state: str | None = None,
    code: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    """The redirect URI (RFC 6749 section 4.1.2): the provider sends the browser here with
    ``code`` and ``state``, or ``error``. Checks the state, exchanges the code, logs in to
    IMAP (and SMTP) with the new token, then saves and publishes the account."""
    params = {
        k: v
        for k, v in {
            "state": state,
            "code": code,
            "error": error,
            "error_description": error_description,
        }.items()
        if v is not None
    }
    as_json = wants_json(request.headers.get("accept", ""))
    return_url = res.settings.oauth2_return_url
    headers = {"Cache-Control": "no-store"}
    try:
        done = await OAuth2SignIn(res).complete(params)
    except ApiError as exc:
        if as_json:
            body = problem(exc, request.url.path).body()
            return JSONResponse(body, exc.status, headers=headers, media_type=MEDIA_TYPE)
        if return_url:
            return RedirectResponse(return_location(return_url, failed_params(exc)), 303)
        return HTMLResponse(failed_page(exc), exc.status, headers=headers)
    if as_json:
        return JSONResponse(done.model_dump(mode="json"), headers=headers)
    if return_url:
        return RedirectResponse(return_location(return_url, connected_params(done)), 303)
    return HTMLResponse(connected_page(done), headers=headers)
