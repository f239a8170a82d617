"""Answers to questions on the page, in headless Chromium through the real server: a
student asks about the demo on screen, another answers, the asker accepts the answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ServerProcess

if not IN_CI:  # in CI a missing playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api")

from playwright.sync_api import expect

from .conftest import Person, api

LOOPS = Path(__file__).resolve().parents[2] / "demos" / "examples" / "python-loops.demo.json"
HOST = {"role": "instructor", "name": "Host", "user_id": "host"}


def test_answer_a_question_and_the_asker_accepts_it(person: Person, server: ServerProcess) -> None:
    room = "answers"
    api(server, "PUT", "/api/demos/loops", json.loads(LOOPS.read_text()), **HOST)
    host = person("Host", room, role="instructor", user_id="host")
    ada = person("Ada", room)
    ben = person("Ben", room)
    host.locator("#demo-picker").select_option("loops")
    host.click("#demo-load")
    expect(ada.locator("#question-text")).to_be_visible()

    ada.fill("#question-text", "Why a list?")
    ada.click("#question-ask")
    on_ben = ben.locator("#question-list .question", has_text="Why a list?")
    expect(on_ben).to_be_visible()
    # nobody answers their own question: Ada has no answer box on hers
    on_ada = ada.locator("#question-list .question", has_text="Why a list?")
    expect(on_ada).to_be_visible()
    expect(on_ada.locator(".answer-input")).to_have_count(0)

    on_ben.locator(".answer-input").fill("It keeps the order.")
    on_ben.locator(".answer-form button").click()
    answer = on_ada.locator(".answer", has_text="It keeps the order.")
    expect(answer).to_be_visible()
    expect(answer).to_contain_text("Ben")
    # Ben may not accept an answer to Ada's question; Ada may
    expect(on_ben.locator(".accept-answer")).to_have_count(0)
    answer.locator(".accept-answer").click()
    for page in (ada, ben, host):
        accepted = page.locator("#question-list .answer[data-accepted='true']")
        expect(accepted).to_contain_text("It keeps the order.")
        expect(page.locator("#question-list .question").first).to_have_attribute(
            "data-answered", "true"
        )
        expect(page.locator(".accept-answer")).to_have_count(0)
    for page in (host, ada, ben):
        assert page.errors == []  # type: ignore[attr-defined]
