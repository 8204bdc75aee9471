"""Failed sign-ins pause further attempts for a name or an address, over HTTP through the app on a fake clock.

No database decides any of this: an empty SQLite store, no seeding. Time only moves when a test moves it.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.dashboard import passwords, signin
from adapters.dashboard.passwords import User, hash_password
from adapters.dashboard.signin_throttle import FORGET_AFTER_SECONDS, SignInThrottle, delay_after
from adapters.sql_store import SqlStore
from engine.logs import JsonFormatter
from tests.test_dashboard import PASSWORDS, Browser, dashboard_app, sign_in, signed_in_settings, sqlite_store

WRONG = "not-the-password"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def cheap_decoy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown names are checked against a decoy of 1,000 iterations, like the test users' (not 600,000)."""
    decoy = hash_password("decoy-password", iterations=1000)
    monkeypatch.setattr(passwords, "_decoy", lambda: decoy)


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = sqlite_store(tmp_path / "vitals.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> SignInThrottle:
    return SignInThrottle(clock)


@pytest.fixture
def browser(empty_store: SqlStore, throttle: SignInThrottle) -> Browser:
    return Browser(dashboard_app(empty_store, signed_in_settings(), throttle=throttle))


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names whose password was checked (the real check still runs)."""
    checked: list[str] = []
    real = signin.check_credentials

    def counting(users: dict[str, User], name: str, password: str) -> User | None:
        checked.append(name)
        return real(users, name, password)

    monkeypatch.setattr(signin, "check_credentials", counting)
    return checked


def fail(browser: Browser, name: str, times: int) -> None:
    for _ in range(times):
        refused = sign_in(browser, name, WRONG)
        assert refused.status_code == 401 and "Wrong name or password." in refused.text


def problem_of(response: httpx.Response) -> str:
    found = re.search(r'<p class="problem" role="alert">([^<]*)</p>', response.text)
    assert found, "no problem shown"
    return found.group(1)


def paused_seconds(response: httpx.Response, whose: str = "for this name") -> int:
    """The pause a refused attempt announces, after checking the header and the page say the same."""
    assert response.status_code == 429, response.text[:500]
    seconds = int(response.headers["retry-after"])
    assert f"sign-in {whose} is paused for {seconds} seconds" in problem_of(response)
    return seconds


def test_five_wrong_passwords_pause_the_name_and_a_success_after_the_pause_clears_it(
        browser: Browser, clock: FakeClock) -> None:
    fail(browser, "otto", 5)
    assert paused_seconds(sign_in(browser, "otto")) == 30  # the right password, refused all the same
    assert browser.get("/").status_code == 303  # not signed in
    clock.advance(29)
    assert paused_seconds(sign_in(browser, "otto")) == 1
    clock.advance(1)
    assert sign_in(browser, "otto").status_code == 303
    assert browser.get("/").status_code == 200
    fail(browser, "otto", 5)  # counted from zero again
    assert paused_seconds(sign_in(browser, "otto")) == 30


def test_the_pause_doubles_with_each_further_failure_up_to_the_cap_then_is_forgotten(
        browser: Browser, clock: FakeClock) -> None:
    fail(browser, "otto", 5)
    pauses = []
    for _ in range(6):
        pauses.append(paused_seconds(sign_in(browser, "otto", WRONG)))
        clock.advance(pauses[-1])
        fail(browser, "otto", 1)
    assert pauses == [30, 60, 120, 240, 480, 900]
    assert paused_seconds(sign_in(browser, "otto")) == 900  # the cap: never longer
    clock.advance(900)
    assert sign_in(browser, "otto").status_code == 303
    assert [delay_after(failures, 5) for failures in (0, 4, 5, 6, 11, 12, 500)] == [0, 0, 30, 60, 900, 900, 900]


def test_failures_are_forgotten_after_a_quiet_window(browser: Browser, clock: FakeClock) -> None:
    fail(browser, "otto", 4)
    clock.advance(FORGET_AFTER_SECONDS)
    fail(browser, "otto", 5)  # the 9th in all, but only the 5th in the window
    assert paused_seconds(sign_in(browser, "otto")) == 30
    clock.advance(30 + FORGET_AFTER_SECONDS - 1)  # the window starts when the pause ends
    fail(browser, "otto", 1)
    assert paused_seconds(sign_in(browser, "otto")) == 60
    clock.advance(60 + FORGET_AFTER_SECONDS)
    fail(browser, "otto", 5)
    assert paused_seconds(sign_in(browser, "otto")) == 30


def test_an_unknown_name_gets_the_same_answer_as_a_user(browser: Browser) -> None:
    answers = []
    for name in ("otto", "nobody"):
        fail(browser, name, 5)
        paused = sign_in(browser, name, WRONG)
        answers.append((paused.status_code, paused.headers["retry-after"], problem_of(paused)))
    assert answers[0] == answers[1]
    assert answers[0][:2] == (429, "30")


def test_a_refused_attempt_does_not_check_the_password(browser: Browser, password_checks: list[str]) -> None:
    for name in ("otto", "nobody"):
        fail(browser, name, 5)
        for _ in range(3):
            assert sign_in(browser, name, PASSWORDS.get(name, WRONG)).status_code == 429
    assert password_checks == ["otto"] * 5 + ["nobody"] * 5


def test_twenty_failures_from_one_address_pause_it_for_every_name(
        empty_store: SqlStore, throttle: SignInThrottle, password_checks: list[str]) -> None:
    app = dashboard_app(empty_store, signed_in_settings(), throttle=throttle)
    ward_pc, other_pc = Browser(app, "10.1.1.1"), Browser(app, "10.1.1.2")
    for number in range(20):
        fail(ward_pc, f"guess{number}", 1)  # one failure per name: far below a name's limit
    assert paused_seconds(sign_in(ward_pc, "otto"), "from this address") == 30
    assert password_checks.count("otto") == 0
    assert sign_in(other_pc, "otto").status_code == 303  # the name itself is not paused
    assert paused_seconds(sign_in(ward_pc, "ada"), "from this address") == 30  # other_pc cleared only its own


def test_a_flood_of_made_up_names_from_many_addresses_keeps_memory_bounded(
        empty_store: SqlStore, clock: FakeClock) -> None:
    throttle = SignInThrottle(clock, max_keys=50)
    app = dashboard_app(empty_store, signed_in_settings(), throttle=throttle)
    for number in range(100):
        fail(Browser(app, f"10.2.0.{number}"), f"made-up-{number}", 1)
        assert throttle.tracked_keys() <= 50
    assert throttle.tracked_keys() == 50
    latest = Browser(app, "10.2.0.99")  # the newest keys are kept and still count
    fail(latest, "made-up-99", 4)
    assert paused_seconds(sign_in(latest, "made-up-99", WRONG)) == 30


def test_a_pause_is_logged_with_the_address_never_the_name_typed(
        browser: Browser, caplog: pytest.LogCaptureFixture) -> None:
    typed = "Secret-Passw0rd-typed-as-name"
    caplog.set_level("WARNING", logger="vitalsstream.dashboard")
    fail(browser, typed, 5)
    assert sign_in(browser, typed, WRONG).status_code == 429
    paused = [record for record in caplog.records if record.getMessage() == "dashboard sign-in paused"]
    assert len(paused) == 1
    assert (paused[0].client, paused[0].paused_for, paused[0].retry_after_seconds) == ("127.0.0.1", "name", 30)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert len(lines) == 6 and not any(typed in line or WRONG in line for line in lines)


def test_parallel_attempts_cannot_all_slip_in_under_the_limit(clock: FakeClock) -> None:
    throttle = SignInThrottle(clock)
    start = threading.Barrier(40)
    admitted: list[bool] = []

    def attempt(number: int) -> None:
        start.wait()
        admitted.append(throttle.admit("otto", f"10.3.0.{number}") is None)

    threads = [threading.Thread(target=attempt, args=(number,)) for number in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 5
