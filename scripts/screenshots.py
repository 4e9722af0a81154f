"""Screenshots of the home, item, chat and staff pages at 1280 and 390 px, saved as PNGs of the
viewport in docs/screenshots/, with Debian's Chromium.

Against a running site (``make run``), as a person with a history and as staff:

    .venv/bin/python scripts/screenshots.py --base-url http://127.0.0.1:8000 \\
        --user alice --password ... --staff admin --staff-password "$(cat var/admin-password.txt)"

tests/e2e/test_as_a_person.py calls ``capture`` at the end of its visit as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDTHS = {"desktop": (1280, 900), "mobile": (390, 844)}
OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _login(page, base_url: str, user: str, password: str, path: str = "/") -> None:  # noqa: ANN001
    page.goto(f"{base_url}/accounts/login/?next={path}")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.locator("main form button[type=submit], main form input[type=submit]").first.click()
    page.wait_for_load_state()


def _save(page, path: Path) -> None:  # noqa: ANN001
    """The viewport only (not the full page): what a person sees first, and a small file."""
    page.screenshot(path=path, full_page=False, animations="disabled")


def capture(
    browser, base_url: str, person: tuple[str, str], staff: tuple[str, str], out: Path = OUT
) -> list[Path]:  # noqa: ANN001, E501
    """Home, an item, the chat and the staff dashboard at each width; returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    for name, (width, height) in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        _login(page, base_url, *person)
        page.goto(f"{base_url}/")
        page.locator("#for-you .card").first.wait_for()
        saved.append(out / f"home-{name}.png")
        _save(page, saved[-1])
        page.locator("#for-you .card-link").first.click()
        page.locator("#why:not(.loading)").wait_for()
        saved.append(out / f"item-{name}.png")
        _save(page, saved[-1])
        page.goto(f"{base_url}/chat/")
        conversation = page.locator("#chat-convs a").first
        if conversation.count():
            conversation.click()
        else:
            page.fill("#chat-text", "something like Alien but funnier")
            page.get_by_role("button", name="Send").click()
        page.locator("#thread .turn.assistant:not(.pending) .chat-card").first.wait_for(
            timeout=60_000
        )
        page.wait_for_timeout(600)  # the smooth scroll to the answer
        saved.append(out / f"chat-{name}.png")
        _save(page, saved[-1])
        context.close()
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        _login(page, base_url, *staff, path="/staff/")
        page.goto(f"{base_url}/staff/")
        page.locator("#versions").wait_for()
        saved.append(out / f"staff-{name}.png")
        _save(page, saved[-1])
        context.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--staff", default="admin")
    parser.add_argument("--staff-password", required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for path in capture(
            browser,
            args.base_url.rstrip("/"),
            (args.user, args.password),
            (args.staff, args.staff_password),
            args.out,
        ):
            print(path, path.stat().st_size, "bytes")
        browser.close()


if __name__ == "__main__":
    main()
