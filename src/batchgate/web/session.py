"""Who is using the dashboard: the API key kept in a cookie at sign-in, and the CSRF token.

The key is entered once and kept in an HttpOnly, SameSite=Strict cookie scoped to /ui: page
scripts cannot read it and other sites' pages cannot send it. Every form that acts carries a
CSRF token too, the value of a second such cookie written into the page (double submit): a
forged form cannot know it. With no key configured (loopback only, `batchgate serve` refuses
anything else) the dashboard opens without signing in.
"""

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from batchgate.api.auth import Caller
from batchgate.api.errors import ApiError
from batchgate.api.state import AppState

KEY_COOKIE = "batchgate_key"
CSRF_COOKIE = "batchgate_csrf"
CSRF_FIELD = "csrf"
COOKIE_PATH = "/ui"


class SignInNeeded(Exception):
    """The page needs a key and the browser has none, or one no longer valid."""


class CsrfRefused(Exception):
    """A form arrived without this browser's CSRF token."""


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.batchgate
    return state


async def caller(request: Request) -> Caller:
    """The holder of the signed-in key; SignInNeeded when a key is required and not valid."""
    try:
        return await app_state(request).keyring.identify(request.cookies.get(KEY_COOKIE))
    except ApiError as error:
        if error.status == 401:
            raise SignInNeeded from None
        raise


def csrf_token(request: Request) -> str:
    """This browser's token, made on its first page (`remember_csrf` then sets the cookie)."""
    token = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if token is None:
        token = request.state.new_csrf = secrets.token_urlsafe(32)
    return token


def remember_csrf(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        set_cookie(request, response, CSRF_COOKIE, new)


async def check_csrf(request: Request) -> FormData:
    """The posted form, once its token matches the cookie's; CsrfRefused otherwise."""
    form = await request.form(max_files=1)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(text(form, CSRF_FIELD), cookie):
        raise CsrfRefused
    return form


def text(form: FormData, name: str) -> str:
    """A text field of the form; empty when missing or a file."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def forget_key(response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
