"""HTML to the plain text people read and queries match; truncation at word boundaries."""

from __future__ import annotations

import pytest
from emberwatch.text import html_to_text, normalise_space, truncate

# ---------------------------------------------------------------- html_to_text


@pytest.mark.parametrize("markup", [None, ""])
def test_nothing_gives_empty_text(markup):
    assert html_to_text(markup) == ""


def test_plain_text_with_entities_is_decoded():
    # no "<": not parsed as HTML, but entities are still decoded
    assert html_to_text("Tom &amp; Jerry") == "Tom & Jerry"
    assert html_to_text("AT&amp;T &#8211; &quot;hi&quot;") == 'AT&T – "hi"'


def test_escaped_markup_in_plain_text_stays_text():
    # "&lt;b&gt;" in a text without tags decodes to the characters, not to a tag that is then dropped
    assert html_to_text("use &lt;b&gt; for bold") == "use <b> for bold"


def test_entities_inside_markup_are_decoded():
    assert html_to_text("<i>fine</i> &amp; dandy &lt;3 &#x2764;") == "fine & dandy <3 \u2764"


def test_the_hacker_news_comment_example():
    text = html_to_text("We moved to Acme Widgets last year &amp; the API is <i>fine</i>.")
    assert text == "We moved to Acme Widgets last year & the API is fine."


def test_paragraphs_become_blank_line_separated():
    assert html_to_text("<p>one</p><p>two</p>") == "one\n\ntwo"


def test_hacker_news_style_paragraphs_without_closing_tags():
    # Algolia's comment_text separates paragraphs with a bare <p> and never closes it
    assert html_to_text("First para.<p>Second para.<p>Third.") == "First para.\n\nSecond para.\n\nThird."


def test_br_is_a_line_break():
    assert html_to_text("line one<br>line two") == "line one\nline two"


@pytest.mark.parametrize("markup", ["line one<br/>line two", "line one<br />line two"])
def test_self_closing_br_is_the_same_line_break_as_br(markup):
    # XHTML-style <br/> (common in Atom/RSS content) must not turn into a paragraph break
    assert html_to_text(markup) == html_to_text("line one<br>line two") == "line one\nline two"


def test_list_items_are_on_their_own_lines():
    assert html_to_text("<ul><li>a</li><li>b</li></ul>") == "a\n\nb"


@pytest.mark.parametrize(
    "markup",
    [
        "<script>alert('acme')</script>visible",
        "<style>p { color: red }</style>visible",
        "<head><title>Page title</title></head>visible",
        "<SCRIPT type='text/javascript'>var x = '<b>acme</b>';</SCRIPT>visible",
    ],
)
def test_script_style_and_head_content_is_dropped(markup):
    assert html_to_text(markup) == "visible"


def test_text_after_a_skipped_block_is_kept():
    assert html_to_text("before<script>x()</script> after") == "before after"


def test_nested_tags_keep_their_text_in_order():
    markup = '<div><p>Acme <b>Widgets <i>are</i></b> <a href="https://x.example">great</a></p></div>'
    assert html_to_text(markup) == "Acme Widgets are great"


def test_inline_tags_do_not_split_words():
    assert html_to_text("Ac<b>me</b>") == "Acme"


def test_whitespace_is_collapsed_and_ends_stripped():
    assert html_to_text("  <p>  lots   of\t\tspace&nbsp;here  </p>  ") == "lots of space here"


def test_many_blank_lines_collapse_to_one():
    assert html_to_text("<p>a</p><p></p><p></p><div></div><p>b</p>") == "a\n\nb"


def test_attributes_are_not_text():
    assert html_to_text('<a href="https://acme.example" title="Acme">link</a>') == "link"


def test_normalise_space_keeps_paragraphs_but_not_trailing_spaces():
    assert normalise_space(" a  b \n\n\n  c\u00a0 d \n") == "a b\n\nc d"


# ---------------------------------------------------------------- truncate


def test_short_text_is_returned_unchanged():
    assert truncate("short", 10) == "short"
    assert truncate("exactly10!", 10) == "exactly10!"


def test_long_text_is_cut_at_a_word_boundary_with_an_ellipsis():
    text = "The quick brown fox jumps over the lazy dog"
    result = truncate(text, 20)
    assert result.endswith("…")
    assert len(result) <= 20
    stem = result[:-1]
    # the stem is a prefix of the text that ends at a word end
    assert text.startswith(stem)
    assert text[len(stem)] == " "
    assert stem == "The quick brown"


@pytest.mark.parametrize("limit", range(2, 60))
def test_result_never_exceeds_the_limit(limit):
    text = "Acme Widgets said on Monday it will open an office in Berlin, hiring forty engineers."
    result = truncate(text, limit)
    assert len(result) <= limit
    assert result.endswith("…") == (len(text) > limit)


def test_punctuation_before_the_cut_is_dropped():
    # the cut lands after "world," and the comma is not left before the ellipsis
    assert truncate("Hello world, and more text", 14) == "Hello world…"


def test_a_very_long_word_is_cut_inside_it():
    # no space late enough in the text: cut mid-word rather than keep almost nothing
    result = truncate("a " + "x" * 50, 20)
    assert result == "a " + "x" * 17 + "…"
    assert len(result) == 20
