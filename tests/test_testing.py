"""`playbook test`: rule tests as data files (playbook_engine.testing and .testfiles).

Each test builds a small playbook directory in tmp_path from tests/testing_cases/mini
(a schema, one playbook of four rules, a template and a fixture of two accounts) and
writes the test file it needs beside it.
"""

from __future__ import annotations

import shutil
import textwrap
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from playbook_engine.cli import app
from playbook_engine.engine import Engine
from playbook_engine.errors import Diagnostic, TestFileError
from playbook_engine.testfiles import find_test_files, load_test_file
from playbook_engine.testing import match_actions, run_tests, write_junit

CASES = Path(__file__).parent / "testing_cases"

# What the mini fixture gives at its `now`:
#   acme:   Welcome (email to yamada@acme.example), Low health (task for sato, due 03-18)
#   globex: nothing (Welcome already fired; health 80; high-touch)
PASSING = """
fixtures: fixtures/accounts.yaml
tests:
  - name: Acme gets a welcome and a call
    accounts: [acme]
    expect:
      - {account: acme, rule: Welcome, kind: email, to: [yamada@acme.example]}
      - {account: acme, kind: task, due: 2026-03-18, priority: high}
"""


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    directory = tmp_path / "playbooks"
    shutil.copytree(CASES / "mini", directory)
    return directory


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(directory: Path, name: str, text: str) -> list[Diagnostic]:
    """The diagnostics of a test file that must not load."""
    path = write(directory, name, text)
    with pytest.raises(TestFileError) as caught:
        load_test_file(path, Engine.load(directory))
    return caught.value.diagnostics


def messages(found: list[Diagnostic]) -> list[str]:
    return [f"{d.span.line}: {d.message}" for d in found]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["test", *args])
    return result.exit_code, result.output


# --------------------------------------------------------------------------- passing and failing


def test_a_passing_test(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", PASSING)
    report = run_tests(mini)
    assert (report.passed, report.failed, report.ok) == (1, 0, True)
    result = report.result("Acme gets a welcome and a call")
    assert result.passed and (result.expected, result.actual) == (2, 2)
    assert result.line == 3 and result.at == "2026-03-16T09:00:00+09:00"


def test_a_failing_test_says_what_is_missing_and_what_is_extra(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: Wrong due date
            expect:
              - {account: acme, kind: task, due: 2026-03-19}
    """)
    result = run_tests(mini).result("Wrong due date")
    assert not result.passed
    assert result.missing == ({"account": "acme", "kind": "task", "due": "2026-03-19"},)
    assert sorted(a.rule for a in result.extra) == ["Low health", "Welcome"]
    assert result.closest[0] is not None and 'due is "2026-03-18"' in result.closest[0]
    diff = result.diff_lines()
    assert diff[0] == "at 2026-03-16T09:00:00+09:00: expected 1 action, got 2"
    assert diff[1] == 'missing  {"account": "acme", "kind": "task", "due": "2026-03-19"}'
    assert any(line.startswith("extra    acme · Onboarding / Welcome: email") for line in diff)
    # The explain of the account involved, rule by rule, with every part of the condition.
    assert "acme · Onboarding / Low health: FIRES" in result.explain
    assert "    ✓ health < 50 → true   (health = 40)" in result.explain
    assert not any(line.startswith("globex") for line in result.explain)


def test_explain_without_coverage_is_computed_for_the_failure(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: Globex should get a call
            expect:
              - {account: globex, rule: Low health, kind: task}
    """)
    result = run_tests(mini, coverage=False).result("Globex should get a call")
    assert "globex · Onboarding / Low health: does not fire: the condition is false" in (
        result.explain)
    assert "    ✗ health < 50 → false   (health = 80)" in result.explain


def test_expect_nothing(mini: Path) -> None:
    write(mini, "quiet.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: Nothing for globex
            accounts: [globex]
            expect: []
          - name: Nothing for acme either
            accounts: [acme]
            expect: []
          - name: Nothing from the tag rule
            rules: [Big account]
            expect: []
    """)
    report = run_tests(mini)
    assert report.result("Nothing for globex").passed
    assert len(report.result("Nothing for acme either").extra) == 2
    assert report.result("Nothing from the tag rule").passed
    assert (report.passed, report.failed) == (2, 1)


def test_inline_fixture_at_and_interval(mini: Path) -> None:
    write(mini, "inline.test.yaml", """
        tests:
          - name: A big account logs in
            fixture:
              now: 2026-03-16T09:00:00+09:00
              timezone: Asia/Tokyo
              accounts:
                - id: initech
                  name: Initech
                  stage: onboarding
                  seats: 2000
                  events:
                    - {type: login, at: 2026-03-16T08:00:00+09:00, user: admin}
            expect:
              - {kind: tag, tag: big, op: add}
              - {kind: notify, channel: cs-alerts, message: "Initech: first admin login"}
          - name: With a shorter interval the login is too old
            fixture:
              now: 2026-03-16T09:00:00+09:00
              accounts:
                - {id: initech, stage: onboarding, seats: 10,
                   events: [{type: login, at: 2026-03-15T20:00:00+09:00, user: admin}]}
            at: 2026-03-16T09:00:00+09:00
            interval: 12h
            expect: []
    """)
    report = run_tests(mini)
    assert report.ok, [r.diff_lines() for r in report.results]


def test_exact_false_ignores_other_actions(mini: Path) -> None:
    write(mini, "loose.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: At least the call
            exact: false
            expect:
              - {kind: task, assignee: sato@example.com}
    """)
    assert run_tests(mini).ok


def test_tests_folder_and_per_test_fixture_file(mini: Path) -> None:
    write(mini, "fixtures/later.yaml", """
        now: 2026-03-16T09:00:00+09:00
        accounts:
          - {id: hooli, stage: onboarding, seats: 3000}
    """)
    write(mini, "tests/later.test.yaml", """
        tests:
          - name: Hooli is big
            fixtures: ../fixtures/later.yaml
            expect:
              - {account: hooli, kind: tag, tag: big}
    """)
    write(mini, "onboarding.test.yaml", PASSING)
    assert [p.name for p in find_test_files(mini)] == ["onboarding.test.yaml", "later.test.yaml"]
    assert run_tests(mini).passed == 2


def test_a_fixture_without_now_is_read_as_of_the_test(mini: Path) -> None:
    write(mini, "fixtures/undated.yaml", """
        accounts:
          - {id: acme, stage: onboarding, tier: tech-touch, health: 40,
             csm: {name: Sato, email: sato@example.com}}
    """)
    write(mini, "undated.test.yaml", """
        fixtures: fixtures/undated.yaml
        tests:
          - name: The call is due two business days after a Friday
            at: 2026-03-20T09:00:00+09:00
            expect:
              - {kind: task, due: 2026-03-24}
    """)
    assert run_tests(mini).ok


# --------------------------------------------------------------------------- matching


def test_matching_is_one_to_one_and_order_free() -> None:
    actual = [
        {"account": "a", "kind": "email", "to": ["x@a"]},
        {"account": "a", "kind": "email", "to": ["y@a"]},
    ]
    # A loose expectation listed first must not take the action the precise one needs.
    assert match_actions([{"kind": "email"}, {"to": ["x@a"]}], actual) == ([], [])
    assert match_actions([{"kind": "email"}] * 3, actual) == ([2], [])
    assert match_actions([{"to": ["x@a"]}], actual) == ([], [1])


def test_values_compare_as_json(mini: Path) -> None:
    payload = [{"kind": "webhook", "payload": {"seats": 8},
                "scheduled_at": "2026-04-15T09:00:00+09:00"}]
    same_instant = datetime(2026, 4, 15, 0, 0, tzinfo=UTC)
    assert match_actions([{"payload": {"seats": 8.0}}], payload) == ([], [])
    assert match_actions([{"payload": {"seats": "8"}}], payload) == ([0], [0])
    assert match_actions([{"scheduled_at": same_instant}], payload) == ([], [])
    later = same_instant + timedelta(hours=1)
    assert match_actions([{"scheduled_at": later}], payload) == ([0], [0])


# --------------------------------------------------------------------------- bad test files


def test_unknown_keys_get_a_did_you_mean_with_path_and_line(mini: Path) -> None:
    found = problems(mini, "bad.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: Typos
            expct: []
          - name: Typos in the expectation
            expect:
              - {acount: acme, kind: emial, rule: Welcom}
    """)
    assert messages(found) == [
        "3: tests[0].expect: missing; every test has `expect:`, the actions it must give "
        "(`expect: []`: none)",
        "4: tests[0].expct: unknown key 'expct' (did you mean 'expect'?)",
        "7: tests[1].expect[0].acount: unknown key 'acount' (did you mean 'account'?)",
        "7: tests[1].expect[0].kind: no action kind \"emial\" (did you mean 'email'?); the "
        "kinds: email, task, webhook, notify, set, tag",
        "7: tests[1].expect[0].rule: no rule named \"Welcom\" (did you mean 'Welcome'?)",
    ]
    assert all(d.span.file.endswith("bad.test.yaml") for d in found)
    assert found[1].span.column == 5


def test_wrong_types(mini: Path) -> None:
    found = problems(mini, "bad.test.yaml", """
        fixtures: fixtures/accounts.yaml
        tests:
          - name: Wrong types
            accounts: acme
            exact: maybe
            expect:
              - {kund: email}
          - name: A file where a fixture goes
            fixture: fixtures/accounts.yaml
            expect:
          - just a string
    """)
    assert messages(found) == [
        '4: tests[0].accounts: expected a list, got "acme"',
        '5: tests[0].exact: expected true or false, got "maybe"',
        "7: tests[0].expect[0].kund: unknown key 'kund' (did you mean 'kind'?)",
        "9: tests[1].fixture: `fixture:` is a fixture written here (now:, accounts:); to "
        "name a file, write `fixtures:`",
        "10: tests[1].expect: has no value (write `expect: []` when nothing should fire)",
        '11: tests[2]: a test is a mapping (name:, expect:, ...), not "just a string"',
    ]


def test_missing_fixture_file_and_unknown_names(mini: Path) -> None:
    found = problems(mini, "bad.test.yaml", """
        tests:
          - name: No such file
            fixtures: fixtures/nope.yaml
            expect: []
          - name: No fixture at all
            expect: []
          - name: Unknown names
            fixtures: fixtures/accounts.yaml
            accounts: [acm]
            rules: [Low helth]
            at: yesterday
            interval: often
            expect:
              - {account: globex, playbook: Onbording}
          - name: Unknown names
            fixtures: fixtures/accounts.yaml
            expect: []
    """)
    text = messages(found)
    assert text[0].startswith('3: tests[0].fixtures: no fixture file "fixtures/nope.yaml" '
                              "(looked for ")
    assert text[0].endswith("nope.yaml; the path is relative to the test file)")
    assert text[1:] == [
        "5: tests[1]: no fixture: give `fixtures: FILE` here or at the top of the file, or "
        "write one under `fixture:`",
        "9: tests[2].accounts[0]: no account \"acm\" in the fixture (did you mean 'acme'?)",
        "10: tests[2].rules[0]: no rule named \"Low helth\" (did you mean 'Low health'?)",
        '11: tests[2].at: expected a date or date-time like 2026-03-15T09:00:00+09:00, got '
        '"yesterday"',
        '12: tests[2].interval: "often" is not a duration; write it like 1d, 12h or 30m',
        "14: tests[2].expect[0].account: \"globex\" is not evaluated: the test's `accounts:` "
        "leaves it out",
        "14: tests[2].expect[0].playbook: no playbook named \"Onbording\" (did you mean "
        "'Onboarding'?)",
        '15: tests[3].name: another test (tests[2]) has the name "Unknown names"; give each '
        "test its own",
    ]


def test_problems_in_an_inline_fixture_point_into_the_test_file(mini: Path) -> None:
    found = problems(mini, "bad.test.yaml", """
        tests:
          - name: Bad inline fixture
            fixture:
              now: 2026-03-16T09:00:00+09:00
              accounts:
                - id: x
                  tier: tech-tuch
            expect: []
    """)
    assert messages(found) == [
        '7: tests[0].fixture.accounts[0].tier: expected one of high-touch, tech-touch, got '
        "\"tech-tuch\" (did you mean 'tech-touch'?)",
    ]
    assert found[0].span.column == 17


def test_problems_in_a_fixture_file_name_that_file(mini: Path) -> None:
    write(mini, "fixtures/broken.yaml", """
        now: 2026-03-16T09:00:00+09:00
        accounts:
          - {id: x, seatz: 3}
    """)
    found = problems(mini, "bad.test.yaml", """
        fixtures: fixtures/broken.yaml
        tests:
          - name: One
            expect: []
          - name: Two
            fixtures: fixtures/broken.yaml
            expect: []
    """)
    assert [d.span.file.rsplit("/", 1)[-1] for d in found] == [
        "bad.test.yaml", "bad.test.yaml", "broken.yaml"]
    assert found[0].message == (
        "fixtures: the fixture file fixtures/broken.yaml has problems, each listed with its "
        "line there")
    assert found[1].message == (
        "tests[1].fixtures: the fixture file fixtures/broken.yaml has problems")
    assert "accounts[0].seatz: unknown field 'seatz' (did you mean 'seats'?)" in found[2].message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "0: the file is empty; a test file holds `tests:`, a list of tests"),
        ("- name: x\n", "1: a test file is a mapping with `tests:`, not a list"),
        ("tests:\n  - name: x\n    expect: [\n", "4: invalid YAML:"),
        ("tests: []\n", "1: tests: there are no tests in the list"),
        ("test: []\n", "1: test: unknown key 'test' (did you mean 'tests'?)"),
        ("tests:\n  - name: x\n    at: 2026-02-30\n    expect: []\n",
         "3: tests[0].at: not a real date: day is out of range for month"),
        ("tests:\n  - name: x\n    name: y\n    expect: []\n",
         "3: tests[0].name: 'name' is given twice"),
        ("tests:\n  - name: x\n    fixtures: fixtures/accounts.yaml\n    accounts: []\n"
         "    expect: []\n",
         "4: tests[0].accounts: the list is empty; leave `accounts:` out to evaluate them all"),
        ("tests:\n  - name: x\n    fixtures: fixtures/accounts.yaml\n"
         "    expect: [{kind: task, to: x@example.com}]\n",
         "4: tests[0].expect[0].to: a task action has no 'to' (it has title, assignee, due, "
         "priority)"),
    ],
)
def test_malformed_files(mini: Path, text: str, expected: str) -> None:
    found = problems(mini, "bad.test.yaml", text)
    assert any(m.startswith(expected) for m in messages(found)), messages(found)


def test_a_broken_file_does_not_stop_the_others(mini: Path) -> None:
    write(mini, "a.test.yaml", "tests:\n  - name: x\n    expct: []\n")
    write(mini, "b.test.yaml", PASSING)
    report = run_tests(mini)
    assert [len(f.errors) for f in report.files] == [2, 0]
    assert (report.passed, report.failed, report.ok) == (1, 0, False)
    rendered = report.files[0].rendered_errors()[1].split("\n")
    assert rendered[0].endswith("a.test.yaml:3:5: error: tests[0].expct: unknown key 'expct' "
                                "(did you mean 'expect'?)")
    assert rendered[1:] == ["    3 |     expct: []", "      |     ^^^^^"]


# --------------------------------------------------------------------------- coverage and JUnit


def test_coverage_lists_unfired_rules_and_one_sided_conditions(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", PASSING)
    coverage = run_tests(mini).coverage
    assert coverage is not None
    assert [r.title for r in coverage.never_fired] == ["Onboarding / Big account",
                                                       "Onboarding / First login"]
    never_false = [(r.rule, c.text) for r, c in coverage.never_false]
    assert never_false == [("Welcome", "1 day after signed_at"), ("Low health", "health < 50"),
                           ("Low health", "tier is tech-touch")]
    never_true = [(r.rule, c.text, c.location) for r, c in coverage.never_true]
    assert never_true == [("Big account", "seats > 1000", "onboarding.playbook:14")]
    # The event rule saw no event, so its `where` was never decided either way.
    assert [(r.rule, c.text) for r, c in coverage.never_decided] == [
        ("First login", 'user is "admin"')]


def test_junit_output_parses(mini: Path, tmp_path: Path) -> None:
    write(mini, "a.test.yaml", PASSING + "  - name: Fails\n    expect: []\n")
    write(mini, "b.test.yaml", "tests: 3\n")
    report = run_tests(mini)
    target = tmp_path / "junit.xml"
    write_junit(report, target)
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name", "").rsplit("/", 1)[-1] for s in suites] == ["a.test.yaml", "b.test.yaml"]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["Acme gets a welcome and a call", "Fails"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "0 missing, 2 extra"
    assert "extra    acme · Onboarding / Welcome" in (failure.text or "")
    error = suites[1].find("testcase/error")
    assert error is not None and "tests: expected a list, got 3" in (error.text or "")


# --------------------------------------------------------------------------- CLI


def test_cli_passes(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", PASSING)
    code, output = cli(str(mini))
    assert code == 0, output
    lines = output.splitlines()
    assert "  ✓ Acme gets a welcome and a call" in lines
    assert lines[-1] == "1 passed, 0 failed"
    assert ("coverage: 2 of 4 rules fired; 5 conditions, 1 never true, 3 never false, "
            "1 never decided") in lines
    assert "  never fired   Onboarding / Big account" in lines
    assert ("  never true    Onboarding / Big account: seats > 1000  (onboarding.playbook:14)"
            in lines)


def test_cli_fails_with_the_diff_and_writes_junit(mini: Path, tmp_path: Path) -> None:
    write(mini, "onboarding.test.yaml", PASSING.replace("2026-03-18", "2026-03-19"))
    junit = tmp_path / "out.xml"
    code, output = cli(str(mini), "--no-coverage", "--junit", str(junit))
    assert code == 1
    assert "  ✗ Acme gets a welcome and a call" in output
    assert '      missing  {"account": "acme", "kind": "task", "due": "2026-03-19", ' in output
    assert "coverage" not in output
    assert output.splitlines()[-1] == "0 passed, 1 failed"
    assert ET.parse(junit).getroot().get("failures") == "1"


def test_cli_test_file_error_exits_1(mini: Path) -> None:
    write(mini, "bad.test.yaml", "tests:\n  - name: x\n    expect: [{kind: emial}]\n")
    code, output = cli(str(mini))
    assert code == 1
    assert "bad.test.yaml:3:21: error: tests[0].expect[0].kind: no action kind" in output
    assert "Traceback" not in output
    assert output.splitlines()[-1] == "0 passed, 0 failed"


def test_cli_usage_errors_exit_2(mini: Path, tmp_path: Path) -> None:
    code, output = cli(str(mini))
    assert code == 2
    assert f"no *.test.yaml files in {mini} or {mini / 'tests'}" in output
    code, output = cli(str(tmp_path / "nowhere"))
    assert code == 2 and "no such directory" in output


def test_cli_playbooks_with_errors_exit_1(mini: Path) -> None:
    write(mini, "onboarding.test.yaml", PASSING)
    write(mini, "broken.playbook",
          'playbook "B"\n  rule "R"\n    when teir is x\n    then add tag "x"\n')
    code, output = cli(str(mini))
    assert code == 1 and "unknown field 'teir'" in output


# --------------------------------------------------------------------------- the spec


def test_the_spec_passes_its_tests(spec_dir: Path, tmp_path: Path) -> None:
    """The contract's 21 actions, and a few narrower tests, as a test file."""
    directory = tmp_path / "spec"
    shutil.copytree(spec_dir, directory, ignore=shutil.ignore_patterns("*.md"))
    shutil.copy(CASES / "spec.test.yaml", directory)
    report = run_tests(directory)
    assert report.ok, [(r.name, r.diff_lines()) for r in report.results if not r.passed]
    first = report.results[0]
    assert (first.expected, first.actual, report.passed) == (21, 21, 5)
    assert report.coverage is not None and not report.coverage.never_fired


def test_the_example_in_the_docs_passes_on_the_spec(spec_dir: Path, tmp_path: Path) -> None:
    """docs/testing.md's full example is a test file for the spec's playbooks: keep it true."""
    page = (Path(__file__).parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    directory = tmp_path / "spec"
    shutil.copytree(spec_dir, directory, ignore=shutil.ignore_patterns("*.md"))
    (directory / "onboarding.test.yaml").write_text(example, encoding="utf-8")
    report = run_tests(directory)
    assert report.ok, [(r.name, r.diff_lines()) for r in report.results if not r.passed]
    assert report.passed == 5


def test_an_expected_null_matches_a_key_the_action_leaves_out() -> None:
    from playbook_engine.testing import match_actions

    missing, extra = match_actions(
        [{"kind": "task", "assignee": None}], [{"kind": "task", "title": "x"}]
    )
    assert (missing, extra) == ([], [])
    missing, extra = match_actions(
        [{"kind": "task", "assignee": None}], [{"kind": "task", "assignee": "a@b.example"}]
    )
    assert (missing, extra) == ([0], [0])
