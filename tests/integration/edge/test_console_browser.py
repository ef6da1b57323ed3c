"""The station console in a real browser (Debian's Chromium, headless, driven by Playwright):
the page loads in Chinese, switches to English, refuses a name as subject, starts a session and
shows live heart rate and the pacer from the agent's WebSocket feed."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from shuxin.edge.agent import build_agent
from shuxin.edge.clock import ManualClock
from shuxin.edge.console import ConsoleServer
from shuxin.edge.settings import build_settings, check_settings

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        message = "needs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_console_in_a_browser(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    chromium = _chromium()
    settings = build_settings(
        station="st-a",
        broker={"url": "mqtt://127.0.0.1:1"},
        data_dir=tmp_path / "data",
        seed=3,
        devices=[
            {"id": "sim-h10-1", "profile": "polar_h10", "sim": {"subject": 1}},
            {"id": "sim-gsr-1", "profile": "shuxin_gsr", "sim": {"subject": 1}},
        ],
    )
    clock = ManualClock(T0, auto_advance=False)
    agent = build_agent(check_settings(settings), clock=clock, connect=False)
    server = ConsoleServer(agent, "127.0.0.1", 0)

    async def drive() -> None:  # about 20x virtual time
        while True:
            clock.advance(0.1)
            await asyncio.sleep(0.005)

    async def main() -> None:
        agent_task = asyncio.create_task(agent.run())
        serve_task = asyncio.create_task(server.serve())
        driver = asyncio.create_task(drive())
        await agent.started.wait()
        while not server.started:
            assert not serve_task.done(), serve_task
            await asyncio.sleep(0.01)
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path=chromium, headless=True, args=CHROMIUM_ARGS
                )
                page = await browser.new_page()
                await page.goto(f"http://127.0.0.1:{server.port}/")
                assert await page.get_attribute("html", "lang") == "zh-CN"
                assert "受试者" in await page.inner_text("body")
                await page.click("#lang")
                assert "Subject" in await page.inner_text("body")
                await page.click("#lang")

                # A name never leaves the page: the field's pattern refuses it (and the API
                # would answer 422, tested in test_console.py).
                await page.fill("#subject", "张伟")
                await page.click("#start-form button[type=submit]")
                assert await page.eval_on_selector("#subject", "el => el.validity.patternMismatch")
                assert await page.is_hidden("#session-panel")

                await page.fill("#subject", "S-4QX9T")
                await page.select_option("#protocol", "rest-resonance-recovery")
                for box in await page.query_selector_all("#device-pick input[type=checkbox]"):
                    if not await box.is_checked():
                        await box.check()
                await page.fill("#rating-before", "6")
                await page.click("#start-form button[type=submit]")
                await page.wait_for_selector("#session-panel", state="visible", timeout=10_000)
                await page.wait_for_function(
                    "/^[0-9]+/.test(document.querySelector('#m-hr').textContent)",
                    timeout=30_000,
                )
                hr = float((await page.inner_text("#m-hr")).split()[0])
                assert 40.0 <= hr <= 140.0  # simulated resting heart rate
                assert (await page.inner_text("#s-subject")) == "S-4QX9T"
                await page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
                await page.click("#stop")
                await page.wait_for_selector("#session-panel", state="hidden", timeout=10_000)
                await browser.close()
        finally:
            driver.cancel()
            serve_task.cancel()
            agent_task.cancel()
            await asyncio.gather(driver, serve_task, agent_task, return_exceptions=True)

    asyncio.run(main())
    assert (tmp_path / "console.png").stat().st_size > 10_000
    assert agent.sessions == {}
    agent.close()
