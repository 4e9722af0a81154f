"""Chromium chats through three turns with refinement and rates a result (the LLM is the fake)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"


def _session(client, user) -> str:  # noqa: ANN001
    """``user``'s session key; taken before Playwright starts, whose event loop forbids the ORM."""
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _chat_page(p, live_server, session: str):  # noqa: ANN001, ANN202
    """Chromium on /chat/, signed in with ``session``."""
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--no-first-run"],
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_cookies(
        [{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/chat/")
    return browser, page


@pytest.mark.browser
def test_chat_three_turns_and_rate(transactional_db, live_server, client, alice, catalog, fake_llm):
    from playwright.sync_api import sync_playwright

    from catalog.models import Interaction

    ARTIFACTS.mkdir(exist_ok=True)
    session = _session(client, alice)
    with sync_playwright() as p:
        browser, page = _chat_page(p, live_server, session)
        box = page.locator("#chat-text")

        box.fill("something like Alien but funnier")
        box.press("Enter")
        first = page.locator(".turn.assistant[data-message]").nth(0)
        first.wait_for(timeout=15000)
        assert first.locator(".chat-card").count() == 6
        assert first.locator(".reason").first.inner_text().strip()

        box.fill("only from the 90s, not horror")
        box.press("Enter")
        second = page.locator(".turn.assistant[data-message]").nth(1)
        second.wait_for(timeout=15000)
        years = second.locator(".chat-card .title").all_inner_texts()
        assert years and all("(199" in t for t in years), years
        page.screenshot(path=str(ARTIFACTS / "chat-two-turns.png"), full_page=True)

        box.fill("more like the second one")
        box.press("Enter")
        third = page.locator(".turn.assistant[data-message]").nth(2)
        third.wait_for(timeout=15000)
        card = third.locator(".chat-card").first
        item_id = int(card.get_attribute("data-item"))
        # the site's one rating control: choosing a value saves it, and the control keeps it
        card.locator("select[name=value]").select_option("4.5")
        card.locator(".stars-show[style*='--r: 4.5']").wait_for(timeout=10000)
        assert card.locator("select[name=value]").input_value() == "4.5"
        page.screenshot(path=str(ARTIFACTS / "chat-three-turns-rated.png"), full_page=True)
        browser.close()
    row = Interaction.objects.get(user=alice, item_id=item_id, kind="rating")
    assert row.value == 4.5 and row.source == "chat"
    # the URL of the conversation was kept across turns: one conversation, three answers
    from chat.models import Conversation

    conversation = Conversation.objects.get(user=alice)
    assert conversation.messages.filter(role="assistant").count() == 3


@pytest.mark.browser
def test_a_refused_message_stays_in_the_box(transactional_db, live_server, client, alice):
    from playwright.sync_api import sync_playwright

    from chat.models import Message

    session = _session(client, alice)
    with sync_playwright() as p:
        browser, page = _chat_page(p, live_server, session)
        box = page.locator("#chat-text")
        box.fill("a film like Alien\x00")  # the server refuses NUL
        box.press("Enter")
        page.locator("#flash", has_text="cannot contain NUL").wait_for(timeout=15000)
        assert box.input_value().startswith("a film like Alien")
        browser.close()
    assert not Message.objects.exists()
