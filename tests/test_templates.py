"""Email and inline templates: loading, check-time diagnostics, sandboxed rendering."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbook_engine import facts
from playbook_engine import templates as templates_module
from playbook_engine.errors import Diagnostic, Severity, TemplateError
from playbook_engine.nodes import Span
from playbook_engine.templates import (
    KnownNames,
    Scope,
    TemplateStore,
    format_value,
    template_context,
)

JST = timezone(timedelta(hours=9))
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=JST)
SPAN = Span("risk.playbook", 8, 19, 8, 70)

# What /work/shared/spec/schema.playbook declares.
SCHEMA = KnownNames(
    account_fields=frozenset(
        {
            "tier", "stage", "plan", "mrr", "seats", "health", "signed_at", "renewal_date",
            "renewal_signed_at", "onboarding_completed_at", "csm",
        }
    ),
    user_fields=frozenset({"csm"}),
    event_fields=frozenset({"user", "feature", "score", "comment", "topic"}),
)


def account(name: str | None = "Acme 株式会社", **fields: facts.Value) -> facts.Account:
    return facts.Account(
        id="acme", name=name, fields=dict(fields), as_of=NOW, tags=frozenset({"vip", "beta"})
    )


def context(
    name: str | None = "Acme 株式会社",
    contact: facts.Contact | None = None,
    event: facts.Event | None = None,
    **fields: facts.Value,
) -> dict[str, object]:
    acct = account(name, **fields)
    return template_context(acct, NOW, contact, event, "Onboarding", "Welcome", acct.fields)


YAMADA = facts.Contact("山田 太郎", "yamada@acme.example", "admin")


def store(**files: str) -> TemplateStore:
    """A store from `name=text` pairs: `a_b` is `templates/a_b.txt`, `x__html` is .html."""
    sources = {}
    for key, text in files.items():
        stem, _, ext = key.partition("__")
        sources[f"templates/{stem}.{ext or 'txt'}"] = text
    return TemplateStore.from_sources(sources)


def email(body: str, subject: str = "Hello") -> str:
    return f'---\nsubject: "{subject}"\n---\n{body}'


def where(diagnostics: list[Diagnostic]) -> list[tuple[str, str]]:
    """Each diagnostic as (`file:line:col`, message)."""
    return [(str(d.span), d.message) for d in diagnostics]


def render_text(body: str, ctx: dict[str, object] | None = None) -> str:
    templates = store(t=email(body))
    assert templates.compile_all(SCHEMA) == []
    return templates.render_email("t", ctx if ctx is not None else context()).text


# --------------------------------------------------------------------------- the spec


def test_spec_templates_load_and_compile_clean(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    assert templates.names() == [
        "adoption/we-miss-you", "advocacy/referral", "onboarding/stalled",
        "onboarding/welcome", "renewal/reminder",
    ]
    assert templates.compile_all(SCHEMA) == []
    assert templates.compile_all() == []
    assert templates.exists("onboarding/stalled")
    assert not templates.exists("onboarding")


def test_spec_welcome_renders_japanese(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    csm = facts.User("佐藤 花子", "sato@example.com")
    rendered = templates.render_email("onboarding/welcome", context(contact=YAMADA, csm=csm))
    assert rendered.subject == "Acme 株式会社 様、ご契約ありがとうございます"
    assert rendered.text == (
        "山田 太郎 様\n\n"
        "Acme 株式会社 のご担当者として、最初の一歩をご案内します。\n"
        "まずは管理画面にログインして、チームメンバーを招待してください。\n\n"
        "ご不明な点は 佐藤 花子 までお気軽にどうぞ。\n"
    )
    assert rendered.html is None


def test_spec_welcome_without_csm_takes_the_default(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    rendered = templates.render_email("onboarding/welcome", context(contact=YAMADA))
    assert rendered.text.endswith("ご不明な点は サクセスチーム までお気軽にどうぞ。\n")


def test_spec_reminder_renders_dates_and_default_plan(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    ctx = context(contact=YAMADA, renewal_date=datetime(2026, 4, 10, tzinfo=JST))
    rendered = templates.render_email("renewal/reminder", ctx)
    assert rendered.subject == "Acme 株式会社: your renewal is on 2026-04-10"
    assert "(current plan)" in rendered.text


def test_spec_referral_renders_event_score(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    nps = facts.Event("nps_submitted", NOW, {"score": Decimal("9")})
    rendered = templates.render_email("advocacy/referral", context(contact=YAMADA, event=nps))
    assert rendered.subject == "Thank you for the 9/10, 山田 太郎!"


def test_spec_stalled_has_an_html_part(spec_dir: Path) -> None:
    templates = TemplateStore.from_directory(spec_dir)
    rendered = templates.render_email("onboarding/stalled", context(contact=YAMADA))
    assert rendered.html is not None
    assert rendered.html.startswith("<p>Hi 山田 太郎,</p>\n")
    assert "<strong>Acme 株式会社</strong>" in rendered.html


# --------------------------------------------------------------------------- loading


def test_names_are_paths_without_extension(tmp_path: Path) -> None:
    (tmp_path / "templates" / "onboarding").mkdir(parents=True)
    (tmp_path / "templates" / "onboarding" / "stalled.txt").write_text(email("x"), "utf-8")
    (tmp_path / "templates" / ".DS_Store").write_bytes(b"\x00\x01")
    templates = TemplateStore.from_directory(tmp_path)
    assert templates.names() == ["onboarding/stalled"]
    assert templates.compile_all() == []


def test_no_templates_folder_means_no_templates(tmp_path: Path) -> None:
    templates = TemplateStore.from_directory(tmp_path)
    assert templates.names() == []
    assert templates.compile_all() == []


def test_bad_file_name_says_how_to_rename() -> None:
    templates = TemplateStore.from_sources({"templates/Onboarding/Stalled Nudge.txt": email("")})
    assert where(templates.compile_all()) == [
        (
            "templates/Onboarding/Stalled Nudge.txt:1:1",
            "template file name 'templates/Onboarding/Stalled Nudge.txt' may use only lowercase"
            " letters, digits, '-', '_' and '/': rename it to"
            " 'templates/onboarding/stalled-nudge.txt'",
        )
    ]
    assert templates.names() == []


def test_other_files_are_ignored_with_a_warning() -> None:
    templates = TemplateStore.from_sources({"templates/README.md": "notes"})
    [diagnostic] = templates.compile_all()
    assert diagnostic.severity is Severity.WARNING
    assert where([diagnostic]) == [
        (
            "templates/README.md:1:1",
            "'templates/README.md' is not a template: email templates end in .txt or .html",
        )
    ]


def test_html_without_text_part() -> None:
    assert where(store(welcome__html=email("<p>hi</p>")).compile_all()) == [
        (
            "templates/welcome.html:1:1",
            "'templates/welcome.html' has no plain-text part: add 'templates/welcome.txt'",
        )
    ]


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "welcome.txt").write_bytes(email("様").encode("shift_jis"))
    assert where(TemplateStore.from_directory(tmp_path).compile_all()) == [
        ("templates/welcome.txt:1:1", "'templates/welcome.txt' is not UTF-8 text: save it as UTF-8")
    ]


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "welcome.txt").write_bytes(b"\xef\xbb\xbf" + email("x").encode())
    assert TemplateStore.from_directory(tmp_path).compile_all() == []


# --------------------------------------------------------------------------- front matter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Hello\n",
            (
                "templates/t.txt:1:1",
                'no front matter: start the file with a line "---", then subject: "...",'
                ' then "---"',
            ),
        ),
        (
            '---\nsubject: "Hi"\nHello\n',
            ("templates/t.txt:1:1", 'the front matter is not closed: add a line "---" after it'),
        ),
        (
            "---\n---\nHello\n",
            ("templates/t.txt:1:1", 'the front matter has no subject: add a line subject: "..."'),
        ),
        (
            '---\nfrom: "x"\nsubjet: "Hi"\n---\n',
            ("templates/t.txt:2:1", "unknown front matter key 'from'"),
        ),
        (
            "---\nsubject: {{ account.name }}\n---\n",
            ("templates/t.txt:2:1", 'the subject must be text in double quotes: subject: "..."'),
        ),
        (
            '---\nsubject: "a"\nsubject: "b"\n---\n',
            ("templates/t.txt:3:1", "'subject' is given twice"),
        ),
        (
            '---\nsubject: ""\n---\n',
            ("templates/t.txt:2:1", "the subject is empty"),
        ),
        (
            '---\n# a comment\nsubject: "unclosed\n---\n',
            (
                "templates/t.txt:4:1",
                "invalid front matter: found unexpected end of stream",
            ),
        ),
        (
            "---\n- subject\n---\n",
            (
                "templates/t.txt:2:1",
                'the front matter must be lines of "key: value", like subject: "..."',
            ),
        ),
    ],
)
def test_front_matter_problems(text: str, expected: tuple[str, str]) -> None:
    assert where(store(t=text).compile_all())[0] == expected


def test_misspelt_subject_key_gets_did_you_mean() -> None:
    assert where(store(t='---\nsubjet: "Hi"\n---\n').compile_all()) == [
        ("templates/t.txt:2:1", "unknown front matter key 'subjet' (did you mean 'subject'?)")
    ]


def test_broken_front_matter_still_defines_the_name() -> None:
    # A playbook naming it must not get a second, misleading "unknown template" error.
    templates = store(t="Hello\n")
    assert templates.exists("t")
    assert templates.check_reference("t", SPAN) == []


def test_html_front_matter_is_optional_but_must_agree() -> None:
    ok = store(t=email("x", "Hi"), t__html="<p>x</p>\n")
    assert ok.compile_all() == []
    assert ok.render_email("t", context()).html == "<p>x</p>\n"
    differs = store(t=email("x", "Hi"), t__html=email("<p>x</p>", "Hello"))
    assert where(differs.compile_all()) == [
        (
            "templates/t.html:2:1",
            "the subject differs from the one in 'templates/t.txt': an email has one subject,"
            " so make them the same or leave it out here",
        )
    ]


# --------------------------------------------------------------------------- check time


def test_syntax_error_line_counts_the_front_matter() -> None:
    body = "Hi {{ contact.name }},\n\n{% if account.health < 50 %}\nlow\n"
    assert where(store(t=email(body)).compile_all()) == [
        (
            # The body's line 3, where the unclosed `if` is, is the file's line 6.
            "templates/t.txt:6:1",
            "template syntax error: Unexpected end of template. Jinja was looking for the"
            " following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to"
            " be closed is 'if'.",
        )
    ]


def test_syntax_error_line_in_a_longer_body() -> None:
    body = "Hi,\n\n\n\n{{ account.seats + }}\n"
    assert where(store(t=email(body)).compile_all()) == [
        ("templates/t.txt:8:1", "template syntax error: unexpected 'end of print statement'")
    ]


def test_syntax_error_in_subject_is_on_the_subject_line() -> None:
    text = '---\n# greeting\nsubject: "Hi {{ account.name }"\n---\nBody\n'
    assert where(store(t=text).compile_all()) == [
        ("templates/t.txt:3:1", "template syntax error: unexpected '}'")
    ]


def test_unknown_filter_is_a_syntax_error() -> None:
    assert where(store(t=email("{{ account.name | upcase }}")).compile_all()) == [
        ("templates/t.txt:4:1", "template syntax error: No filter named 'upcase'.")
    ]


def test_unknown_variable_with_did_you_mean() -> None:
    templates = store(t=email("Hi,\n{{ acount.name }} and {{ acount.id }}\n{{ total }}\n"))
    assert where(templates.compile_all()) == [
        ("templates/t.txt:5:4", "unknown variable 'acount' in template (did you mean 'account'?)"),
        ("templates/t.txt:6:4", "unknown variable 'total' in template"),
    ]


def test_unknown_variable_in_subject() -> None:
    templates = store(t=email("Body", "Hi {{ contakt.name }}"))
    [diagnostic] = templates.compile_all()
    assert (str(diagnostic.span), diagnostic.message) == (
        "templates/t.txt:2:17",
        "unknown variable 'contakt' in template (did you mean 'contact'?)",
    )
    assert diagnostic.render(templates.sources["templates/t.txt"]).splitlines()[1:] == [
        '    2 | subject: "Hi {{ contakt.name }}"',
        "      |                 ^^^^^^^",
    ]


def test_locally_defined_names_are_fine() -> None:
    body = (
        "{% set total = 3 %}{{ total }}\n"
        "{% for tag in account.tags %}{{ loop.index }}. {{ tag }}{% endfor %}\n"
        "{% macro hi(who) %}Hi {{ who }}{% endmacro %}{{ hi(contact.name) }}\n"
        "{{ range(3) | list | length }} {{ now }} {{ playbook }} / {{ rule }}\n"
    )
    assert store(t=email(body)).compile_all(SCHEMA) == []


def test_lipsum_is_not_available() -> None:
    assert where(store(t=email("{{ lipsum() }}")).compile_all()) == [
        ("templates/t.txt:4:4", "unknown variable 'lipsum' in template")
    ]


@pytest.mark.parametrize(
    ("expression", "column", "message"),
    [
        ("account.teir", 12, "unknown account field 'teir' in template (did you mean 'tier'?)"),
        ('account["teir"]', 13, "unknown account field 'teir' in template (did you mean 'tier'?)"),
        (
            "account.csm.mail",
            16,
            "unknown attribute 'mail' of user 'csm' in template (did you mean 'email'?)",
        ),
        ("contact.nmae", 12, "unknown contact attribute 'nmae' in template (did you mean 'name'?)"),
        ("event.scor", 10, "unknown event field 'scor' in template (did you mean 'score'?)"),
    ],
)
def test_unknown_attributes(expression: str, column: int, message: str) -> None:
    templates = store(t=email("Hi,\n{{ " + expression + " }}\n"))
    assert where(templates.compile_all(SCHEMA)) == [(f"templates/t.txt:5:{column}", message)]
    assert templates.compile_all() == [] or expression.startswith("contact")


def test_known_attributes_pass() -> None:
    body = (
        "{{ account.id }} {{ account.name }} {{ account.tags }} {{ account.tier }}\n"
        "{{ account.csm.name }} {{ account.csm.email }} {{ contact.role }}\n"
        "{{ event.type }} {{ event.at }} {{ event.score }} {{ account.name.upper() }}\n"
    )
    assert store(t=email(body)).compile_all(SCHEMA) == []


def test_private_attributes_are_refused_at_check_time() -> None:
    templates = store(t=email("{{ account.__class__ }}\n{{ ''.__class__.__mro__ }}\n"))
    assert where(templates.compile_all(SCHEMA)) == [
        ("templates/t.txt:4:12", "'__class__' is not allowed in templates"),
        ("templates/t.txt:5:7", "'__class__' is not allowed in templates"),
        ("templates/t.txt:5:17", "'__mro__' is not allowed in templates"),
    ]


def test_include_and_extends_are_refused() -> None:
    templates = store(t=email('{% include "footer" %}\n{% extends "base" %}\n'))
    stands_alone = "is not available in templates: each one stands alone"
    assert where(templates.compile_all()) == [
        ("templates/t.txt:4:4", "'{% include %}' " + stands_alone),
        ("templates/t.txt:5:4", "'{% extends %}' " + stands_alone),
    ]


def test_every_template_is_checked_in_one_run() -> None:
    templates = store(a=email("{{ acount }}"), b=email("{% if %}"), c="no front matter")
    files = sorted(d.span.file for d in templates.compile_all())
    assert files == ["templates/a.txt", "templates/b.txt", "templates/c.txt"]


def test_missing_template_reference() -> None:
    templates = store(**{"onboarding_stalled": email("x")})
    assert templates.check_reference("onboarding_stalled", SPAN) == []
    assert where(templates.check_reference("onboarding_staled", SPAN)) == [
        (
            "risk.playbook:8:19",
            "unknown template 'onboarding_staled' (did you mean 'onboarding_stalled'?)",
        )
    ]


# --------------------------------------------------------------------------- inline


def test_inline_compiles_with_bare_fields() -> None:
    templates = TemplateStore()
    text = "Health fell to {{ health }}: review {{ account.name }} ({{ csm.name }})"
    assert templates.compile_inline(text, SPAN, SCHEMA) == []


def test_inline_problems_are_reported_at_the_string() -> None:
    templates = TemplateStore()
    text = "{{ helth }} {{ csm.mail }} {{ account.teir }} {{ acount.name }}"
    assert where(templates.compile_inline(text, SPAN, SCHEMA)) == [
        ("risk.playbook:8:19", "unknown variable 'acount' in template (did you mean 'account'?)"),
        ("risk.playbook:8:19", "unknown variable 'helth' in template (did you mean 'health'?)"),
        (
            "risk.playbook:8:19",
            "unknown attribute 'mail' of user 'csm' in template (did you mean 'email'?)",
        ),
        ("risk.playbook:8:19", "unknown account field 'teir' in template (did you mean 'tier'?)"),
    ]
    assert where(templates.compile_inline("Call {{ account.name }", SPAN)) == [
        ("risk.playbook:8:19", "template syntax error: unexpected '}'")
    ]


def test_inline_without_schema_does_not_check_bare_names() -> None:
    assert TemplateStore().compile_inline("{{ anything }}", SPAN) == []


def test_inline_renders_bare_names_event_first() -> None:
    templates = TemplateStore()
    nps = facts.Event("nps_submitted", NOW, {"score": Decimal("4"), "user": "u1"})
    ctx = context("Umbrella Corp", event=nps, health=Decimal("48"), user="account-user")
    text = "NPS {{ event.score }}/{{ score }} from {{ account.name }} by {{ user }}, {{ health }}"
    assert templates.render_inline(text, ctx) == "NPS 4/4 from Umbrella Corp by u1, 48"


def test_inline_render_title() -> None:
    ctx = context("Umbrella Corp", health=Decimal("48.0"))
    title = "Health fell to {{ health }}: review {{ account.name }}"
    assert TemplateStore().render_inline(title, ctx) == "Health fell to 48: review Umbrella Corp"


# --------------------------------------------------------------------------- rendering values


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("48"), "48"),
        (Decimal("48.0"), "48"),
        (Decimal("48.00"), "48"),
        (Decimal("0.30"), "0.3"),
        (Decimal("1234.50"), "1234.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("-0.0"), "0"),
        (Decimal("-2.50"), "-2.5"),
        (48.0, "48"),
        (0.1, "0.1"),
        (True, "yes"),
        (False, "no"),
        (None, ""),
        (datetime(2026, 3, 16, 0, 0, tzinfo=JST), "2026-03-16"),
        (datetime(2026, 3, 16, 23, 30, tzinfo=JST), "2026-03-16"),
        (facts.User("佐藤 花子", "sato@example.com"), "佐藤 花子"),
        (["a", Decimal("2.0")], "a, 2"),
        ("株式会社", "株式会社"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_numbers_render_as_people_write_them() -> None:
    ctx = context(health=Decimal("48.0"), seats=Decimal("70"), mrr=Decimal("1234.50"))
    body = (
        "{{ account.health }} {{ account.mrr }} {{ account.seats * 0.9 }}"
        " {{ account.health / 2 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 'n=' ~ account.health }}"
    )
    assert render_text(body, ctx) == "48 1234.5 63 24 3.5 2 n=48"


def test_dates_render_as_dates() -> None:
    ctx = context(signed_at=datetime(2026, 2, 20, tzinfo=JST))
    assert render_text("{{ account.signed_at }} {{ now }}", ctx) == "2026-02-20 2026-03-16"
    # A date keeps being a date: it compares and has its date parts.
    body = "{{ account.signed_at < now }} {{ account.signed_at.year }}"
    assert render_text(body, ctx) == "yes 2026"


def test_user_renders_as_name_with_name_and_email() -> None:
    ctx = context(csm=facts.User("佐藤 花子", "sato@example.com"))
    body = "{{ account.csm }} <{{ account.csm.email }}> {{ account.csm.name }}"
    assert render_text(body, ctx) == "佐藤 花子 <sato@example.com> 佐藤 花子"


def test_missing_values_render_empty_and_take_defaults() -> None:
    body = (
        "[{{ account.health }}][{{ account.csm.name }}][{{ contact.name }}][{{ event.score }}]"
        "[{{ account.plan | default('standard') }}][{{ account.csm.name | default('CS') }}]"
        "[{{ account.health + 1 }}][{% if account.health < 50 %}low{% else %}not low{% endif %}]"
        "[{{ account.health is defined }}]"
    )
    assert render_text(body, context(name=None)) == "[][][][][standard][CS][][not low][no]"


def test_missing_values_pass_through_filters() -> None:
    body = "[{{ account.seats | int + 1 }}][{{ account.seats | round }}][{{ account.plan|upper }}]"
    assert render_text(body) == "[][][]"
    assert render_text("{{ account.seats | round | default('?') }}") == "?"


def test_self_is_not_a_template_variable() -> None:
    assert where(store(t=email("{{ self }}")).compile_all()) == [
        ("templates/t.txt:4:4", "unknown variable 'self' in template")
    ]


def test_tags_render_sorted() -> None:
    assert render_text("{{ account.tags }}|{{ 'vip' in account.tags }}") == "beta, vip|yes"


def test_keeps_trailing_newline_and_text_verbatim() -> None:
    assert render_text("a\n\n") == "a\n\n"


def test_subject_is_one_line() -> None:
    subject = "Hi {{ account.name }}\\n  and welcome"
    rendered = store(t=email("x", subject)).render_email("t", context())
    assert rendered.subject == "Hi Acme 株式会社 and welcome"


# --------------------------------------------------------------------------- html


def test_html_part_is_autoescaped_and_text_is_not() -> None:
    templates = store(
        t=email("{{ account.name }}\n", "{{ account.name }}"),
        t__html="<p>{{ account.name }}</p><p>{{ '<i>ok</i>' | safe }}</p>\n",
    )
    assert templates.compile_all() == []
    rendered = templates.render_email("t", context("<b>Tom & Jerry</b>"))
    assert rendered.subject == "<b>Tom & Jerry</b>"
    assert rendered.text == "<b>Tom & Jerry</b>\n"
    assert rendered.html == "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p><p><i>ok</i></p>\n"


def test_html_escapes_user_and_numbers() -> None:
    templates = store(t=email("x"), t__html=email("{{ account.csm }} {{ account.seats }}"))
    ctx = context(csm=facts.User("<script>", None), seats=Decimal("5.0"))
    assert templates.render_email("t", ctx).html == "&lt;script&gt; 5"


# --------------------------------------------------------------------------- sandbox and errors


@pytest.mark.parametrize(
    "expression",
    [
        "account.__class__",
        "account['__class__']",
        "''.__class__",
        "cycler.__init__.__globals__",
        "account.name.__class__.__base__",
        "account.nothing.__class__",
        "now.__class__",
    ],
)
def test_sandbox_blocks_private_attributes(expression: str) -> None:
    templates = store(t=email("Hello\n{{ " + expression + " }}\n"))
    with pytest.raises(TemplateError) as caught:
        templates.render_email("t", context())
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.span.file == "templates/t.txt"
    assert diagnostic.span.line == 5
    assert "is not allowed in templates" in diagnostic.message
    assert diagnostic.message.startswith("cannot render template 't': '__")


def test_sandbox_blocks_mutation_and_huge_values() -> None:
    for body in ("{{ [1].append(2) }}", "{{ dict(a=1).update(b=2) }}", "{{ 'x' * 10**9 }}",
                 "{{ 2 ** 100000 }}"):
        with pytest.raises(TemplateError):
            TemplateStore().render_inline(body, context())


def test_render_error_names_template_and_line() -> None:
    templates = store(t=email("Hello\n\n{{ account.seats / 0 }}\n"))
    with pytest.raises(TemplateError) as caught:
        templates.render_email("t", context(seats=Decimal("5")))
    assert str(caught.value) == (
        "templates/t.txt:6:1: error: cannot render template 't': division by zero"
    )
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


def test_render_error_in_subject() -> None:
    templates = store(t=email("x", "{{ 1 // 0 }}"))
    with pytest.raises(TemplateError, match=r"^templates/t.txt:2:1: error: cannot render the"):
        templates.render_email("t", context())


def test_inline_render_error_is_at_the_string() -> None:
    with pytest.raises(TemplateError) as caught:
        TemplateStore().render_inline("{{ 1 / 0 }}", context(), SPAN)
    assert str(caught.value) == (
        "risk.playbook:8:19: error: cannot render the message '{{ 1 / 0 }}': division by zero"
    )


def test_rendering_a_broken_or_unknown_template_raises_template_error() -> None:
    templates = store(t=email("{% if %}"))
    with pytest.raises(TemplateError, match="does not compile"):
        templates.render_email("t", context())
    with pytest.raises(TemplateError, match=r"unknown template 'tt' \(did you mean 't'\?\)"):
        templates.render_email("tt", context())
    with pytest.raises(TemplateError, match="does not compile"):
        templates.render_inline("{{", context())


# --------------------------------------------------------------------------- never raises


# Pieces that make template-like text more often than random characters alone would.
TOKENS = [
    *"{}%#-:\"'|.()[]_ \n\tabcxyz様01\\", "{{", "}}", "{%", "%}", "{#", "#}", "account",
    "contact", "event", "now", ".name", ".csm", "---", "subject: ", "if ", "endif", "for ", " in ",
    "__class__", "default(", "/", "*", "**", "~",
]
template_text = st.one_of(
    st.text(max_size=60),
    st.lists(st.sampled_from(TOKENS), max_size=30).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(template_text)
def test_any_inline_text_compiles_or_yields_diagnostics(text: str) -> None:
    diagnostics = TemplateStore().compile_inline(text, SPAN, SCHEMA)
    assert all(isinstance(d, Diagnostic) and d.span == SPAN for d in diagnostics)


@settings(max_examples=300, deadline=None)
@given(template_text, st.text(max_size=40))
def test_any_file_compiles_or_yields_diagnostics(text: str, noise: str) -> None:
    for source in (text, email(text), "---\n" + noise + "\n---\n" + text):
        templates = store(t=source, t__html=source)
        diagnostics = templates.compile_all(SCHEMA)
        assert all(d.span.file.startswith("templates/t.") for d in diagnostics)
        if not any(d.is_error for d in diagnostics):
            # A clean template may still fail on its data (1 / 0), but never with a raw error.
            with contextlib.suppress(TemplateError):
                templates.render_email("t", context(contact=YAMADA))


# --------------------------------------------------------------------------- lazy scope

FIELDS = ("id", "name", "tier", "health", "signed_at", "csm", "vip", "tags", "user")
SCOPE_TEXTS = [
    "{{ account.name }} {{ account.id }} {{ account.tags }} {{ account }}",
    "{{ health }} {{ health | default('none') }} {{ account.health | default('none') }}",
    "{{ missing | default('absent') }} {{ account.missing | default('absent') }}",
    "{{ tier }} {{ vip }} {{ signed_at }} {{ csm }} {{ csm.email }} {{ account.csm.name }}",
    "{{ name }} {{ id }} {{ tags }} {{ user }} {{ score }} {{ type }} {{ at }}",
    "{{ event.type }} {{ event.at }} {{ event.score }} {{ contact }} {{ contact.email }}",
    "{{ now }} {{ playbook }}/{{ rule }} {{ range(2) | list }} {% if health > 40 %}up{% endif %}",
    "{% set x = health * 2 %}{{ x }} {{ account.health + 1 }}",
]


@pytest.mark.parametrize("text", SCOPE_TEXTS)
@pytest.mark.parametrize("with_event", [False, True])
def test_a_scope_gives_what_template_context_gives(text: str, with_event: bool) -> None:
    csm = facts.User("Sato", "sato@example.com")
    acct = facts.Account(
        id="acme", name="Acme", as_of=NOW, tags=frozenset({"vip", "beta"}),
        fields={"tier": "high-touch", "health": Decimal("48.0"), "vip": True, "csm": csm,
                "signed_at": NOW - timedelta(days=3), "user": "account-user", "name": None},
    )
    nps = facts.Event("nps_submitted", NOW, {"score": Decimal("4"), "user": "u1", "tier": "x"})
    event = nps if with_event else None
    values = {name: acct.value(name, NOW) for name in FIELDS}
    eager = template_context(acct, NOW, YAMADA, event, "Onboarding", "Welcome", values)
    lazy = Scope(acct, NOW, event, FIELDS).context("Onboarding", "Welcome", YAMADA)
    templates = TemplateStore()
    assert templates.render_inline(text, lazy) == templates.render_inline(text, eager)
    mail = store(t=email(text, subject=text.replace("\n", " ")), t__html=email(text))
    assert mail.render_email("t", lazy) == mail.render_email("t", eager)


def test_a_scope_reads_a_field_only_when_a_template_names_it() -> None:
    asked: list[str] = []

    class Watched(facts.Account):
        __slots__ = ()

        def value(self, name: str, when: datetime) -> facts.Value:
            asked.append(name)
            return super().value(name, when)

    acct = Watched(id="a", name="A", fields={"health": Decimal(48)}, as_of=NOW)
    scope = Scope(acct, NOW, None, ("id", "name", "health", "tier"))
    templates = TemplateStore()
    for _ in range(3):
        context = scope.context("P", "R", None)
        assert templates.render_inline("{{ health }} {{ account.health }}", context) == "48 48"
    assert asked == ["health"]


# --------------------------------------------------------------------------- plain templates

PLAIN_TEXTS = [
    "{{ account.name }}: health {{ account.health }} (CSM: {{ account.csm.name | default('-') }})",
    "{{ health }} {{ csm }} {{ csm.email | upper }} {{ missing.deeper | default('none') | upper }}",
    "{{ event.score }} {{ event.nothing }} {{ score }} {{ contact.email }} {{ contact }} {{ now }}",
    "{{ account }} {{ account.tags }} {{ signed_at }} {{ vip }} {{ tier | default }}\n",
    "{{ range }} {{ health | round(1) }} {{ tier | replace('high', 'low') }}",
    "{{ account.__class__ }}",
    "{{ health.nothing.more }} {{ user | int }} {{ health.real }} {{ tier.upper }}",
    "{{ tier | nonsense }}",
]


def _rendered(render: object) -> str:
    """The rendered text, or the error's message."""
    assert callable(render)
    try:
        return str(render())
    except TemplateError as exc:
        return f"error: {exc}"


@pytest.mark.parametrize("text", PLAIN_TEXTS)
@pytest.mark.parametrize("with_csm", [False, True])
def test_a_plain_template_renders_as_jinja_renders_it(
    text: str, with_csm: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    csm = facts.User("Sato", "sato@example.com") if with_csm else None
    acct = facts.Account(
        id="acme", name="Acme", as_of=NOW, tags=frozenset({"vip", "beta"}),
        fields={"tier": "high-touch", "health": Decimal("48.25"), "vip": True, "csm": csm,
                "signed_at": NOW - timedelta(days=3), "user": "12"},
    )
    nps = facts.Event("nps_submitted", NOW, {"score": Decimal("4"), "user": "u1"})
    context = Scope(acct, NOW, nps, FIELDS).context("Onboarding", "Welcome", YAMADA)
    inline, mail = TemplateStore(), store(t=email(text, subject=text.strip()))
    plain = [_rendered(lambda: inline.render_inline(text, context)),
             _rendered(lambda: mail.render_email("t", context))]
    monkeypatch.setattr(templates_module, "_render_plain", lambda *args: None)
    inline, mail = TemplateStore(), store(t=email(text, subject=text.strip()))
    assert plain == [_rendered(lambda: inline.render_inline(text, context)),
                     _rendered(lambda: mail.render_email("t", context))]


def test_text_and_lookups_are_plain_templates_and_others_are_not() -> None:
    def plain(text: str) -> bool:
        return TemplateStore()._inline_part(text, None).compiled.plain is not None  # type: ignore[union-attr]

    assert plain("Call {{ account.name }} ({{ account.csm.name | default('nobody') }})")
    assert plain("no variables at all")
    assert not plain("{% if health %}x{% endif %}")
    assert not plain("{{ health + 1 }}")
    assert not plain("{{ account['name'] }}")
    assert not plain("{{ tags | join(', ') }}")  # join takes jinja's evaluation context
