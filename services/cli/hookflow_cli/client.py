"""The admin CLI's HTTP client of the config API: the bearer token, and every failure turned
into one CliError that says what to do (the token itself is never part of one)."""

from typing import Any, NoReturn

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from hookflow_cli.errors import CliError, ExitCode

PAGE = 200
"""The most items the config API answers in one page of a list."""


class AdminSettings(BaseSettings):
    """What the admin commands read from the environment (`--api-url` and `--token` win)."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKFLOW_", extra="ignore", use_attribute_docstrings=True
    )

    api_url: str = "http://127.0.0.1:8081"
    """Where the config API listens."""
    admin_token: SecretStr | None = None
    """The config API's bearer token (`hookflow run` prints it at start)."""


class ApiError(CliError):
    """An answer of the config API that is not a success: its status and its JSON body."""

    def __init__(self, message: str, status: int, body: Any, code: ExitCode) -> None:
        super().__init__(message, code)
        self.status = status
        self.body = body


class Client:
    """The config API at `api_url`: one method per kind of call, JSON in and out."""

    def __init__(self, api_url: str | None, token: str | None, timeout: float = 30.0) -> None:
        settings = AdminSettings()
        self.api_url = (api_url or settings.api_url).rstrip("/")
        secret = token or (settings.admin_token.get_secret_value() if settings.admin_token else "")
        if not secret:
            raise CliError(
                "no admin token: set HOOKFLOW_ADMIN_TOKEN (or pass --token) to the config API's "
                "token (`hookflow run` prints it and keeps it in its data dir's admin-token file)",
                ExitCode.AUTH,
            )
        try:
            self._http = httpx.Client(
                base_url=self.api_url,
                headers={"Authorization": f"Bearer {secret}"},
                timeout=timeout,
            )
        except httpx.InvalidURL as error:
            raise CliError(
                f"{self.api_url!r} is not a URL ({error}): set HOOKFLOW_API_URL (or pass "
                "--api-url) to the config API's, such as http://127.0.0.1:8081",
                ExitCode.UNREACHABLE,
            ) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """The JSON answer of a successful call (None for 204); a CliError otherwise."""
        try:
            query = {k: v for k, v in (params or {}).items() if v is not None}
            response = self._http.request(method, path, json=json, params=query)
        except (httpx.TransportError, httpx.InvalidURL) as error:
            raise CliError(
                f"cannot reach the config API at {self.api_url} ({type(error).__name__}: "
                f"{error or 'no answer'}): is it running? set HOOKFLOW_API_URL (or pass "
                "--api-url) to where it listens",
                ExitCode.UNREACHABLE,
            ) from None
        if response.status_code == 204:
            return None
        body = _body(response)
        if response.is_success:
            return body
        self._fail(response.status_code, body)

    def _fail(self, status: int, body: Any) -> NoReturn:
        said = body.get("error") if isinstance(body, dict) else None
        said = said or str(body)[:200] or f"HTTP {status}"
        if status == 401:
            raise ApiError(
                f"the config API at {self.api_url} refused the admin token: set "
                "HOOKFLOW_ADMIN_TOKEN (or pass --token) to the token it was started with",
                status,
                body,
                ExitCode.AUTH,
            )
        if status == 404:
            raise ApiError(said, status, body, ExitCode.NOT_FOUND)
        if status in (400, 422):
            raise ApiError(said, status, body, ExitCode.INVALID)
        raise ApiError(f"the config API answered {status}: {said}", status, body, ExitCode.ERROR)

    def pages(self, path: str, params: dict[str, Any], limit: int | None = None) -> list[Any]:
        """The items of a paginated list, following nextCursor (up to `limit` of them)."""
        items: list[Any] = []
        cursor = None
        while limit is None or len(items) < limit:
            size = PAGE if limit is None else min(PAGE, limit - len(items))
            page = self.call("GET", path, params={**params, "limit": size, "cursor": cursor})
            items += page["items"]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        return items


def _body(response: httpx.Response) -> Any:
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text
