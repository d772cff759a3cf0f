"""The caller of a request, from its bearer token (RFC 6750).

A missing or unknown token is a 401 with ``WWW-Authenticate: Bearer`` and nothing
else: the answer is the same whatever the request was about.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.callers import Caller
from services.api.errors import NotAuthenticated
from services.api.resources import Resources

bearer = HTTPBearer(auto_error=False, description="An API token from MAILSYNC_API_TOKENS.")


def resources(request: Request) -> Resources:
    res: Resources = request.app.state.resources
    return res


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send Authorization: Bearer <API token>")
    found = resources(request).tokens.lookup(credentials.credentials)
    if found is None:
        raise NotAuthenticated("unknown API token")
    return found


CallerDep = Annotated[Caller, Depends(caller)]
ResourcesDep = Annotated[Resources, Depends(resources)]
