"""Themes in the care team's words: rules, precedence, explanations, brand keywords, the plug-in point."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from emberwatch.enrich import enrich
from emberwatch.enrich.themes import (
    KEYWORDS,
    PRECEDENCE,
    THEMES,
    RuleThemeClassifier,
    Theme,
    ThemeClassifier,
    classify_theme,
    rule_classifier,
    tokens,
    validate_extra,
)

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "enrich_eval.jsonl"

# ---------------------------------------------------------------- one theme each


@pytest.mark.parametrize(
    ("text", "theme"),
    [
        # issue: outages, faults, bad service
        ("Acme app has been down since 9am", "issue"),
        ("The app keeps crashing when I open my basket", "issue"),
        ("Acme support agent was rude and hung up on me", "issue"),
        ("Schon wieder Störung bei Acme", "issue"),
        ("La app de Acme no funciona", "issue"),
        ("Encore une panne chez Acme", "issue"),
        # solution_wanted: an explicit ask
        ("@acme please add a dark mode", "solution_wanted"),
        ("Need help resetting my Acme password", "solution_wanted"),
        ("Feature request: let us export to CSV", "solution_wanted"),
        ("Bitte fügt endlich einen Dunkelmodus hinzu!", "solution_wanted"),
        ("Por favor, arreglen el inicio de sesión", "solution_wanted"),
        ("Pouvez-vous ajouter le paiement par PayPal", "solution_wanted"),
        # time_cost: price, billing, delays, waiting
        ("Charged twice for my Acme subscription", "time_cost"),
        ("Been on hold with Acme for 55 minutes", "time_cost"),
        ("$19.99 a month for Acme Cloud now", "time_cost"),
        ("Die Rechnung von Acme ist viel zu hoch", "time_cost"),
        ("Me cobraron dos veces la factura", "time_cost"),
        ("Ma facture Acme a augmenté", "time_cost"),
        # feedback: praise or opinion on what was delivered
        ("The new Acme headphones sound amazing", "feedback"),
        ("I hate the new Acme logo", "feedback"),
        ("Danke an den Acme Kundenservice", "feedback"),
        ("Merci Acme, produit au top", "feedback"),
        # question
        ("Does Acme ship to Canada?", "question"),
        ("¿Dónde está la tienda de Acme?", "question"),
        # other
        ("Acme is sponsoring the city marathon this year", "other"),
        ("Spotted an Acme delivery van on my street", "other"),
    ],
)
def test_each_theme(text, theme):
    assert classify_theme(text).name == theme


# ---------------------------------------------------------------- precedence and context rules


def test_an_explicit_ask_outranks_the_fault_it_describes():
    theme = classify_theme("Acme app down for 3 hours and still waiting, please fix it!")
    assert theme.name == "solution_wanted"
    assert theme.matched == ("please fix",)
    assert theme.rule == "an explicit ask; outranks issue, time_cost"
    assert theme.trouble == ("app down", "waiting", "for 3 hours")


@pytest.mark.parametrize(
    ("text", "theme", "outranked"),
    [
        ("Acme app has been down, still waiting on a refund", "issue", "time_cost"),
        ("Terrible prices at Acme these days", "time_cost", "feedback"),
        ("Love the new design, is there a dark version?", "feedback", None),
        ("Is there an Acme store in Leeds?", "question", None),
    ],
)
def test_precedence_issue_then_time_cost_then_feedback_then_question(text, theme, outranked):
    result = classify_theme(text)
    assert result.name == theme
    if outranked:
        assert result.rule.endswith(f"outranks {outranked}")


def test_the_precedence_is_the_documented_one():
    assert PRECEDENCE == ("solution_wanted", "issue", "time_cost", "feedback", "question")
    assert set(THEMES) == {*PRECEDENCE, "other"}
    assert set(KEYWORDS) == {"issue", "solution_wanted", "time_cost", "feedback"}


def test_thanks_for_a_fix_is_feedback_not_an_issue():
    theme = classify_theme("Thanks for fixing the outage so quickly!", tone="positive")
    assert theme == Theme("feedback", ("fixing", "thanks"), "resolved, with praise")
    # without a tone, the thanks alone is enough
    assert classify_theme("Thanks for fixing the outage so quickly!").name == "feedback"


@pytest.mark.parametrize(
    "text",
    [
        "When will the outage be fixed?",
        "Outage still not fixed",
        "Need to get this outage fixed",
        "Die Störung ist noch nicht behoben",
    ],
)
def test_a_pending_or_denied_fix_is_still_an_issue(text):
    assert classify_theme(text, tone="negative").name == "issue"


def test_money_words_in_a_positive_post_are_praise_of_value():
    assert classify_theme("Quick refund, thank you Acme!", tone="positive").name == "feedback"
    assert classify_theme("Quick refund, thank you Acme!", tone="negative").name == "time_cost"
    assert classify_theme("Great headphones for the price", tone="positive").rule.startswith("praise")


@pytest.mark.parametrize(
    "text",
    [
        "No issues with my Acme order",
        "Zero problems so far",
        "Keine Probleme mit der Lieferung",
        "Sin problemas con el pedido",
        "Aucun problème avec la livraison",
        "Never had an outage with Acme",
    ],
)
def test_negated_problem_words_are_not_an_issue(text):
    assert classify_theme(text, tone="positive").name != "issue"


def test_generic_problem_words_give_way_to_a_specific_theme():
    assert classify_theme("I have an issue with my bill").name == "time_cost"
    theme = classify_theme("Having problems with the Acme app")
    assert (theme.name, theme.rule) == ("issue", "generic problem word")


@pytest.mark.parametrize(
    ("text", "opener"),
    [
        ("how do I reset my Acme password", "how"),
        ("anyone know if acme has a store in Leeds", "anyone"),
        ("does acme ship to canada", "does"),
        ("Wie kann ich bei Acme meine Adresse ändern", "wie"),
        ("Est-ce que Acme livre en Belgique", "est-ce"),
        ("@acme why is my order not showing", "why"),
    ],
)
def test_a_question_without_a_question_mark(text, opener):
    assert classify_theme(text) == Theme("question", (opener,), "question opener")


@pytest.mark.parametrize(
    "text",
    [
        "What a lovely day at the Acme store",
        "When I opened the Acme box I smiled",
        "Will never forget the Acme launch party",
        "Do not buy the Acme X2 without the case",
    ],
)
def test_statements_that_open_like_questions_are_not_questions(text):
    assert classify_theme(text).name != "question"


def test_a_negative_post_without_theme_words_is_a_complaint():
    theme = classify_theme("Acme customer service 🙄", tone="negative")
    assert theme == Theme("issue", ("customer service",), "negative post with no theme word: a complaint")
    assert classify_theme("Acme customer service 🙄").name == "other"


def test_matched_words_are_the_posts_own_words():
    theme = classify_theme("The Acme app keeps CRASHING, error 503 every time")
    assert theme.matched == ("crashing", "error")


def test_tokens_split_french_elisions_and_keep_contractions():
    assert tokens("L'appli d'Acme ne marche pas, I can't log in #outage @acme") == [
        "l'",
        "appli",
        "d'",
        "acme",
        "ne",
        "marche",
        "pas",
        ",",
        "i",
        "can't",
        "log",
        "in",
        "outage",
    ]


# ---------------------------------------------------------------- brand keywords


def test_a_brand_adds_its_own_keywords():
    extra = {"issue": ["blackout", "no dial tone"], "time_cost": ["roaming charge*"]}
    theme = classify_theme("The blackout hit again, no dial tone", extra)
    assert theme == Theme(
        "issue", ("blackout", "no dial tone"), "brand keyword (keyword)", trouble=("blackout", "no dial tone")
    )
    assert classify_theme("Roaming charges in Spain are silly", extra).matched == ("roaming charges",)
    # another brand does not see them
    assert classify_theme("The blackout hit again, no dial tone").name == "other"


def test_brand_prefix_keywords_and_negation_apply():
    extra = {"issue": ["reboot*"]}
    assert classify_theme("Router needs rebooting every night", extra).matched == ("rebooting",)
    assert classify_theme("No reboots since the update", extra, tone="positive").name != "issue"


def test_a_brand_keyword_set_is_compiled_once():
    extra = {"feedback": ["kudos to the crew"]}
    assert rule_classifier(extra) is rule_classifier({"feedback": ["kudos to the crew"]})


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            {"complaint": ["x"]},
            "unknown theme 'complaint' (known: issue, solution_wanted, time_cost, feedback)",
        ),
        ({"issue": "blackout"}, "issue: must be a list of keywords"),
        ({"issue": [""]}, "issue[0]: must be a non-empty string"),
        ({"issue": ["*"]}, "issue[0]: '*' has no words"),
        ({"issue": ["black*out"]}, "issue[0]: '*' may only end a keyword"),
        ({"issue": ["x" * 61]}, "issue[0]: longer than 60 characters"),
    ],
)
def test_invalid_brand_keywords_are_named(extra, problem):
    assert validate_extra(extra) == [problem]
    with pytest.raises(ValueError) as raised:
        RuleThemeClassifier(extra)
    assert str(raised.value) == problem


# ---------------------------------------------------------------- the plug-in point


class KeywordModel:
    """Stands in for a learned classifier: same protocol, its own decision."""

    def classify(self, text: str, *, tone: str | None = None, language: str | None = None) -> Theme:
        return Theme("feedback", (), f"model (tone {tone}, language {language})")


def test_a_learned_classifier_plugs_in_through_the_protocol():
    model: ThemeClassifier = KeywordModel()
    result = enrich("Acme app is down again and I can't log in", themes=model)
    assert (result.theme, result.theme_rule) == ("feedback", "model (tone negative, language en)")


# ---------------------------------------------------------------- the labelled corpus


def test_corpus_theme_accuracy_is_at_least_80_percent():
    # the scanner's path: tone first, then the theme with that tone
    # the rows the analyzer was first written against; test_enrich_eval holds the whole set's figures
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [row for row in rows if row["split"] == "tuned"]
    pairs = [(row["theme"], enrich(row["text"], language=row["language"]).theme) for row in rows]
    accuracy = sum(expected == got for expected, got in pairs) / len(pairs)
    confusion = Counter(pairs)
    table = "\n".join(f"  {e:16} -> {g:16} {n}" for (e, g), n in sorted(confusion.items()) if e != g)
    misses = "\n".join(
        f"  {e:16} -> {g:16} {row['text']}" for row, (e, g) in zip(rows, pairs, strict=True) if e != g
    )
    assert accuracy >= 0.8, (
        f"theme accuracy {accuracy:.2f}\nconfusion (wrong only):\n{table}\nmisses:\n{misses}"
    )
