"""The console in a real browser (Debian's Chromium driven by Playwright) against the real
services: sign-in, a Basic-auth workflow made through the page, the parse helper, a live
capture of a real webhook, and an execution read node by node.

Screenshots go to $HOOKFLOW_SCREENSHOTS (default: the system's temporary folder, under
hookflow-console/), never into the repository. Without Chromium the tests are skipped, except
under CI=true, where they fail.
"""

import base64
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support import TOKEN, System, payment_workflow, wait_for, webhook_url

SHOTS = Path(os.environ.get("HOOKFLOW_SCREENSHOTS") or tempfile.gettempdir()) / "hookflow-console"
BASIC = "Basic " + base64.b64encode(b"pay:s3cret").decode()
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        reason = "Chromium is not installed (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh browser session; a script error on the page fails the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(10_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == [], errors


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def signed_in(page: Page, system: System, where: str = "#/workflows") -> None:
    await page.goto(f"{system.config_url}/#token={TOKEN}")
    await expect(page.locator("h1")).to_have_text("Workflows")
    if where != "#/workflows":
        await page.goto(f"{system.config_url}/{where}")


async def test_sign_in_with_the_token_and_sign_out(local: System, page: Page) -> None:
    await page.goto(local.config_url + "/")
    await expect(page.locator("#sign-in h1")).to_have_text("Sign in")
    await page.fill("#token", "not-the-token")
    await page.click("#sign-in button[type=submit]")
    await expect(page.locator("#sign-in-error")).to_contain_text("refused")
    await shot(page, "01-sign-in-refused")
    await page.fill("#token", TOKEN)
    await page.click("#sign-in button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Workflows")
    assert await page.evaluate("sessionStorage.getItem('hookflow.token')") == TOKEN
    assert await page.evaluate("localStorage.length") == 0
    await page.click("#sign-out")
    await expect(page.locator("#sign-in-error")).to_have_text("Signed out.")
    assert await page.evaluate("sessionStorage.getItem('hookflow.token')") is None


async def test_the_token_in_the_url_signs_in_and_leaves_the_address_bar(
    local: System, page: Page
) -> None:
    await local.create(payment_workflow(title="Listed"))
    await page.goto(f"{local.config_url}/#token={TOKEN}")
    await expect(page.locator("#workflows a.title")).to_have_text("Listed")
    assert TOKEN not in page.url
    assert page.url.endswith("#/workflows")
    # A token the API refuses later (rotated, say) brings the sign-in back, saying why.
    await page.evaluate("sessionStorage.setItem('hookflow.token', 'stale')")
    await page.reload()
    await expect(page.locator("#sign-in-error")).to_contain_text("401")


async def test_a_basic_auth_workflow_made_through_the_page(local: System, page: Page) -> None:
    await signed_in(page, local)
    await page.click("#new-workflow")
    await expect(page.locator("#editor h1")).to_have_text("New workflow")
    # The config API's validation errors appear beside their field.
    await page.check("#auth-on")
    await page.fill("#nodes-json", '[{"key": "bad key!", "type": "end"}]')
    await page.click("#save")
    await expect(page.locator("#title + .field-error")).to_contain_text("title")
    await expect(page.locator("#auth-username + .field-error")).to_contain_text("username")
    await expect(page.locator("#nodes-json + .field-error")).to_contain_text("nodes[0].key")
    await shot(page, "02-validation-errors")

    await page.fill("#title", "Payment callback")
    await page.fill("#auth-username", "pay")
    await page.fill("#auth-password", "s3cret")
    await page.fill("#nodes-json", '[{"key": "done", "type": "end", "config": {}}]')
    await page.click("#save")
    await expect(page.locator("#webhook-url")).to_contain_text("/api/webhook:trigger/")
    workflow_id = page.url.rsplit("/", 1)[1]
    status, workflow = await local.api("GET", f"/api/workflows/{workflow_id}")
    assert status == 200
    assert workflow["trigger"]["basicAuth"] == {"username": "pay", "passwordSet": True}
    assert await page.input_value("#auth-password") == "", "the password is write-only"
    url = webhook_url(local, workflow)
    assert (await local.post(url, json={}))[0].status == 401
    assert (await local.post(url, json={}, headers={"Authorization": BASIC}))[0].status == 200

    # The list: disable it, then delete it (after confirming).
    await page.click("a[data-section=workflows]")
    row = page.locator(f"tr[data-id='{workflow_id}']")
    await expect(row.locator(".last .badge")).to_have_text("succeeded")
    await shot(page, "03-workflows")
    await row.locator("input.enabled").uncheck()
    await wait_for(lambda: _enabled_is(local, workflow_id, False))
    page.once("dialog", lambda dialog: dialog.accept())
    await row.locator("button.delete").click()
    await expect(row).to_have_count(0)
    assert (await local.api("GET", f"/api/workflows/{workflow_id}"))[0] == 404


async def _enabled_is(system: System, workflow_id: str, enabled: bool) -> bool:
    _, workflow = await system.api("GET", f"/api/workflows/{workflow_id}")
    return bool(workflow["enabled"] is enabled)


async def test_the_parse_helper_turns_picked_paths_into_variables(
    local: System, page: Page
) -> None:
    workflow = await local.create(payment_workflow(title="Parsed", trigger={}))
    await signed_in(page, local, f"#/workflows/{workflow['id']}")
    await page.fill("#parse-sample", "https://shop.example/notify?order[id]=A1&source=web")
    await page.click("#parse-url")
    picker = page.locator("#parsed table[data-part=query]")
    await picker.locator("input[data-key='order.id']").check()
    await (
        picker.locator("tr", has=page.locator("input[data-key='order.id']"))
        .locator(".alias")
        .fill("Order ID")
    )
    await page.click("#parsed .use-paths")
    await page.fill("#parse-sample", '{"status": "paid", "amount": 12.5, "items": [{"sku": "X"}]}')
    await page.click("#parse-body")
    await page.check("#parsed table[data-part=body] input[data-key='items[0].sku']")
    await page.check("#parsed table[data-part=body] input[data-key='status']")
    await shot(page, "04-parse-helper")
    await page.click("#parsed .use-paths")
    await page.click("#save")
    await expect(page.locator("#saved")).to_contain_text("version 2")
    _, saved = await local.api("GET", f"/api/workflows/{workflow['id']}")
    assert saved["trigger"]["request"]["query"] == [{"key": "order.id", "alias": "Order ID"}]
    assert saved["trigger"]["request"]["body"] == [{"key": "status"}, {"key": "items[0].sku"}]


async def test_a_live_capture_of_a_real_webhook(rabbit_system: System, page: Page) -> None:
    system = rabbit_system
    workflow = await system.create(
        payment_workflow(
            title="Captured", trigger={"basicAuth": {"username": "pay", "password": "s3cret"}}
        )
    )
    await signed_in(page, system, f"#/workflows/{workflow['id']}")
    await page.click("#listen")
    await expect(page.locator("#capture-status")).to_contain_text("Listening until")
    response, _ = await system.post(
        webhook_url(system, workflow) + "?source=shop",
        json={"status": "paid", "order": {"id": "A1"}},
        headers={"Authorization": BASIC, "X-Request-Id": "demo-1", "Cookie": "s=secret"},
    )
    assert response.status == 200
    sample = page.locator("#samples .sample")
    await expect(sample).to_contain_text('"A1"')
    shown = await sample.inner_text()
    assert "x-request-id" in shown and "demo-1" in shown and "shop" in shown
    assert BASIC not in shown and "authorization" not in shown and "cookie" not in shown
    await sample.locator(".offer-paths").click()
    await sample.locator("table[data-part=headers] input[data-key='x-request-id']").check()
    await sample.locator("table[data-part=body] input[data-key='order.id']").check()
    await sample.locator("table[data-part=query] input[data-key='source']").check()
    await shot(page, "05-live-capture")
    await sample.locator(".use-paths").click()
    await page.click("#save")
    await expect(page.locator("#saved")).to_contain_text("version 2")
    _, saved = await system.api("GET", f"/api/workflows/{workflow['id']}")
    request = saved["trigger"]["request"]
    assert {"key": "x-request-id"} in request["headers"]
    assert request["body"] == [{"key": "order.id"}]
    assert request["query"] == [{"key": "source"}]


def three_nodes() -> dict[str, Any]:
    """A sync workflow: a calculation, a condition on the body, a response from the branch."""
    return payment_workflow(
        title="Three nodes",
        sync=True,
        nodes=[
            {"key": "total", "type": "calculation", "config": {"expression": "2.0 * 21.0"}},
            {
                "key": "paid",
                "type": "condition",
                "config": payment_workflow()["nodes"][0]["config"],
                "branches": {
                    "true": [
                        {
                            "key": "answer",
                            "type": "response",
                            "config": {
                                "statusCode": 201,
                                "body": {"total": "{{$jobsMapByNodeKey.total}}"},
                            },
                        }
                    ]
                },
            },
        ],
    )


async def test_an_execution_read_node_by_node_and_replayed(
    rabbit_system: System, page: Page
) -> None:
    system = rabbit_system
    workflow = await system.create(three_nodes())
    response, body = await system.post(
        webhook_url(system, workflow), json={"status": "paid", "order": {"id": "A1"}}
    )
    assert response.status == 201, body
    execution_id = response.headers["X-Hookflow-Execution-Id"]
    await system.execution(execution_id)
    await signed_in(page, system, "#/executions")
    await page.select_option("#status-filter", "succeeded")
    await expect(page.locator(f"#executions tr[data-id='{execution_id}']")).to_contain_text(
        "succeeded"
    )
    await shot(page, "06-executions")
    await page.click(f"#executions tr[data-id='{execution_id}'] a.execution")
    nodes = page.locator("#nodes > li")
    await expect(nodes).to_have_count(3)
    assert [await n.get_attribute("data-key") for n in await nodes.all()] == [
        "total",
        "paid",
        "answer",
    ]
    await expect(nodes.nth(0)).to_contain_text("42")
    await expect(page.locator("#context")).to_contain_text('"A1"')
    await expect(page.locator("#response")).to_contain_text("201")
    await shot(page, "07-execution")
    await page.click("#replay")
    await expect(page.locator("#summary")).to_contain_text("Replay of")
    await expect(page.locator("#nodes > li")).to_have_count(3)
    assert execution_id not in page.url


async def test_the_whole_story_from_the_console_alone(rabbit_system: System, page: Page) -> None:
    """The issue's "done": a Basic-auth payment workflow made from a captured sample, sent a
    webhook, its execution read node by node, without touching the API."""
    system = rabbit_system
    await signed_in(page, system)
    await page.click("#new-workflow")
    await page.fill("#title", "Payment callback")
    await page.check("#auth-on")
    await page.fill("#auth-username", "pay")
    await page.fill("#auth-password", "s3cret")
    condition = payment_workflow()["nodes"]
    await page.fill("#nodes-json", json.dumps(condition))
    await page.click("#save")
    url = await page.locator("#webhook-url").inner_text()
    key = url.rsplit("/", 1)[1]
    await page.click("#listen")
    await expect(page.locator("#capture-status")).to_contain_text("Listening until")
    webhook = f"{system.gateway_url}/api/webhook:trigger/{key}"
    paid = {"status": "paid", "order": {"id": "A1"}}
    response, _ = await system.post(webhook, json=paid, headers={"Authorization": BASIC})
    assert response.status == 200
    sample = page.locator("#samples .sample")
    await sample.locator(".offer-paths").click()
    await sample.locator("table[data-part=body] input[data-key='order.id']").check()
    await sample.locator("table[data-part=body] .alias").nth(2).fill("Order ID")
    await sample.locator(".use-paths").click()
    await page.click("#save")
    await expect(page.locator("#saved")).to_contain_text("version 2")
    _, saved = await system.api("GET", f"/api/workflows/{page.url.rsplit('/', 1)[1]}")
    assert saved["trigger"]["request"]["body"] == [{"key": "order.id", "alias": "Order ID"}]
    assert saved["trigger"]["basicAuth"] == {"username": "pay", "passwordSet": True}
    response, _ = await system.post(webhook, json=paid, headers={"Authorization": BASIC})
    execution_id = response.headers["X-Hookflow-Execution-Id"]
    await system.execution(execution_id)
    await page.click("#editor .webhook a")
    await page.click(f"#executions tr[data-id='{execution_id}'] a.execution")
    await expect(page.locator("#summary")).to_contain_text("Version2")
    await expect(page.locator("#nodes > li")).to_have_count(1)
    await expect(page.locator("#nodes > li").first).to_contain_text("paid")
    await expect(page.locator("#nodes > li").first).to_contain_text("true")
    await shot(page, "08-story-execution")
