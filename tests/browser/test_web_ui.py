"""The web UI in Debian's headless Chromium against the real API over a seeded store: a
counselor's session report with its charts drawn, trends, acknowledging an alert; a commander
who sees reports only and no individual data; the language switch; the static files' headers.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

PASSWORD = "browser test passphrase"  # as seeded by conftest.py

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SUBJECT_CODE = re.compile(r"S-[0-9A-Z]{5,12}")

#: Per chart: the series count and the number of points of the first series (from the
#: ECharts instance itself, so it fails when a chart is empty or not drawn).
CHART_STATE = """
() => [...document.querySelectorAll('[data-chart]')].map((el) => {
  const chart = echarts.getInstanceByDom(el);
  if (!chart) return {name: el.dataset.chart, drawn: false};
  const option = chart.getOption();
  const first = option.series[0] || {};
  return {
    name: el.dataset.chart,
    drawn: el.querySelectorAll('canvas').length > 0,
    series: option.series.length,
    points: (first.data || [])
      .filter((p) => p !== null && (!Array.isArray(p) || p[1] !== null)).length,
    bands: first.markArea ? first.markArea.data.length : 0,
  };
})
"""


def test_counselor_opens_a_session_report_with_charts_drawn(
    page: Any, web_site: Any, login: Callable[[str], None], screenshot_dir: Path
) -> None:
    login("counselor1")
    nav = page.locator("#nav a").all_inner_texts()
    assert "会话" in nav
    assert "预警工作单" in nav
    # The list shows the seeded sessions; open the newest through its link.
    page.wait_for_selector("main table tbody tr")
    session_id = web_site.session_ids[-1]
    page.click(f"a[href='#/sessions/{session_id}']")
    page.locator("[data-chart] canvas").nth(3).wait_for()
    charts = {c["name"]: c for c in page.evaluate(CHART_STATE)}
    assert set(charts) == {"mean_hr_bpm", "rmssd_ms", "coherence_ratio", "scl_mean_us"}
    for chart in charts.values():
        assert chart["drawn"], chart
        assert chart["series"] == 1, chart
        assert chart["bands"] == 3, chart  # one band per phase: baseline, resonance, recovery
    # The gateway's display curves are on a 5-s grid over the 600-s session (at most 121
    # points): HR and SCL fill nearly every bin (an edge bin may be empty); RMSSD starts after
    # its 30-s window (570 s / 5 s = 114 bins); coherence after its longer spectral window, so
    # only "at least half the session" is required of it.
    points = {name: chart["points"] for name, chart in charts.items()}
    assert points["mean_hr_bpm"] >= 110, points
    assert points["scl_mean_us"] >= 110, points
    assert points["rmssd_ms"] >= 100, points
    assert points["coherence_ratio"] >= 60, points
    # Per-phase table: phases are columns, every metric row names its unit.
    phase_table = page.locator("section:has(h2:text('分阶段指标')) table")
    phase_names = phase_table.locator("th").all_inner_texts()
    assert phase_names == ["阶段", "baseline", "resonance", "recovery"]
    labels = phase_table.locator("tbody tr td:first-child").all_inner_texts()
    assert "mean_hr_bpm (次/分)" in labels
    assert "rmssd_ms (毫秒)" in labels
    shot = screenshot_dir / "session_report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_counselor_opens_trends_with_the_baseline_band(
    page: Any, web_site: Any, login: Callable[[str], None], screenshot_dir: Path
) -> None:
    login("counselor1")
    page.goto(f"{web_site.url}/#/subjects/{web_site.subject_code}/trends")
    page.locator("[data-chart] canvas").nth(1).wait_for()
    charts = {c["name"]: c for c in page.evaluate(CHART_STATE)}
    assert set(charts) == {"lnrmssd", "hr_bpm"}
    for chart in charts.values():
        assert chart["series"] == 2, chart  # the values and the 7-session rolling mean
        assert chart["points"] == len(web_site.session_ids), chart
    assert page.locator("main table tbody tr").count() == len(web_site.session_ids)
    page.screenshot(path=str(screenshot_dir / "trends.png"), full_page=True)


def test_counselor_acknowledges_an_alert_with_a_note(
    page: Any, web_site: Any, login: Callable[[str], None], screenshot_dir: Path
) -> None:
    login("counselor1")
    page.click("#nav a[href='#/alerts']")
    row = page.locator("main tbody tr", has_text=web_site.subject_code)
    row.locator("textarea").fill("电话回访，已约下次训练")
    row.locator("button[data-action=acknowledge]").click()
    expect(page.locator("main tbody tr", has_text=web_site.subject_code)).to_have_count(0)
    page.goto(f"{web_site.url}/#/alerts?state=acknowledged")
    done = page.locator("main tbody tr", has_text=web_site.subject_code)
    done.wait_for()
    assert "电话回访，已约下次训练" in done.inner_text()
    assert "已确认" in done.inner_text()
    page.screenshot(path=str(screenshot_dir / "alerts.png"), full_page=True)


def test_commander_sees_reports_only_and_no_individual_data(
    page: Any, web_site: Any, login: Callable[[str], None], screenshot_dir: Path
) -> None:
    login("commander1")
    assert page.locator("#nav a").all_inner_texts() == ["统计报告"]
    page.wait_for_selector("main table")
    # One subject only: every people cell is below k = 5 and shown as suppressed, never 0.
    suppressed = page.locator("[data-suppressed=true]")
    assert suppressed.count() > 0
    assert set(suppressed.all_inner_texts()) == {"<5 人，已隐藏"}
    page.screenshot(path=str(screenshot_dir / "report.png"), full_page=True)
    page.goto(f"{web_site.url}/#/sessions")  # a route the role lacks falls back to reports
    page.wait_for_selector("main table")
    assert page.evaluate("location.hash").startswith("#/reports")
    html = page.content()
    assert web_site.subject_code not in html
    assert not SUBJECT_CODE.search(html)


def test_language_switch_persists(page: Any, web_site: Any, login: Callable[[str], None]) -> None:
    login("commander1")
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.locator("#nav a").all_inner_texts() == ["Reports"]
    page.wait_for_selector("[data-suppressed=true]")
    assert page.locator("[data-suppressed=true]").first.inner_text() == "suppressed (<5)"
    page.reload()
    page.wait_for_selector("#nav a")
    assert page.locator("#nav a").all_inner_texts() == ["Reports"]


def _api_read_as_counselor(site: Any, path: str, purpose: str) -> None:
    form = urllib.parse.urlencode({"username": "counselor1", "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"{site.url}/api/v1/auth/token", form) as login:
        token = json.load(login)["access_token"]
    request = urllib.request.Request(
        f"{site.url}{path}",
        headers={"Authorization": f"Bearer {token}", "X-Shuxin-Purpose": purpose},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def test_auditor_sees_only_the_audit_log_with_the_counselor_reads(
    page: Any, web_site: Any, login: Callable[[str], None]
) -> None:
    session_id = web_site.session_ids[0]
    _api_read_as_counselor(web_site, f"/api/v1/sessions/{session_id}", "follow-up call")
    login("auditor1")
    assert page.locator("#nav a").all_inner_texts() == ["审计日志"]
    page.fill("input[name=action]", "session.read")
    page.click("form.filters button[type=submit]")
    row = page.locator("main tbody tr", has_text=f"/api/v1/sessions/{session_id}")
    row.first.wait_for()
    text = row.first.inner_text()
    assert "user:counselor1" in text
    assert web_site.subject_code in text
    assert "follow-up call" in text


def test_static_files_carry_csp_and_cache_headers(web_site: Any) -> None:
    with urllib.request.urlopen(f"{web_site.url}/") as index:
        csp = index.headers["Content-Security-Policy"]
        assert index.headers["Cache-Control"] == "no-cache"
        body = index.read().decode()
    assert "default-src 'self'" in csp
    assert "http" not in csp
    assert "http://" not in body
    assert "https://" not in body
    with urllib.request.urlopen(f"{web_site.url}/vendor/echarts.min.js") as vendor:
        assert vendor.headers["Cache-Control"].startswith("public, max-age=")
