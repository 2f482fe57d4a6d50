"""Drives the agent's dashboard in Debian's headless chromium (run inside a lab host's
namespace, where the agents' addresses are reachable): the page shows the lab's state; the
switchover button moves the service. Prints one JSON object; screenshots go to --shots.

    python browser.py URL --token-file F --shots DIR [--expect-active SITE] [--switch-to SITE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,1200",
]


def summary(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.ID, "summary").text)


def wait_text(driver: webdriver.Chrome, starts: str, timeout: float) -> str:
    """Until the headline's state (after any warnings it opens with, such as UNPROTECTED)
    starts with ``starts``."""
    WebDriverWait(driver, timeout, 0.2).until(
        lambda d: any(part.startswith(starts) for part in summary(d).split("; "))
    )
    return summary(driver)


def active_boxes(driver: webdriver.Chrome) -> list[str]:
    # Read in one script: the page redraws its picture every second, and elements found in
    # one call may be gone by the next (a stale element reference).
    found = driver.execute_script(
        "return Array.from(document.querySelectorAll(\"#picture g[data-active='true']\"))"
        ".map(g => g.id)"
    )
    return [str(x) for x in found]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--shots", required=True)
    ap.add_argument("--switch-to")
    ap.add_argument("--expect-active", default="primary", help="the site the page must show")
    ap.add_argument("--name", default="dashboard", help="screenshots' name prefix")
    args = ap.parse_args()
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for f in FLAGS:
        opts.add_argument(f)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as profile:
        opts.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
        try:
            driver.set_page_load_timeout(20)
            driver.get(args.url)
            out["title"] = driver.title
            out["before"] = wait_text(driver, f"{args.expect_active} active", 20)
            time.sleep(1.5)  # a full refresh: picture, vantage table, events
            out["active_before"] = active_boxes(driver)
            out["vantage_rows"] = (
                int(driver.execute_script("return document.querySelectorAll('#vantage tr').length"))
                - 1
            )
            dns = driver.execute_script(  # an SVG group: its text elements, one per line
                "const d = document.getElementById('dns'); return d ? Array.from("
                "d.querySelectorAll('text')).map(t => t.textContent).join('\\n') : null"
            )
            out["dns_box"] = None if dns is None else str(dns)
            driver.save_screenshot(str(shots / f"{args.name}-before.png"))
            if args.switch_to:
                token = Path(args.token_file).read_text().strip()
                driver.find_element(By.ID, "token").send_keys(token)
                driver.find_element(By.ID, "switchover").click()
                WebDriverWait(driver, 5).until(expected_conditions.alert_is_present())
                driver.switch_to.alert.accept()
                WebDriverWait(driver, 10, 0.2).until(
                    lambda d: (
                        "started" in d.find_element(By.ID, "result").text
                        or "refused" in d.find_element(By.ID, "result").text
                    )
                )
                out["result"] = driver.find_element(By.ID, "result").text
                out["after"] = wait_text(driver, f"{args.switch_to} active", 60)
                time.sleep(1.5)
                out["active_after"] = active_boxes(driver)
                driver.save_screenshot(str(shots / f"{args.name}-after.png"))
        finally:
            driver.quit()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
