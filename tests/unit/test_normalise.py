"""Source payloads to `Mention`s: Algolia hits (Hacker News), feedparser entries (RSS, Atom, Google Alerts).

The payloads are the examples of /work/shared/reference/sources.md, sections 3 and 8.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import feedparser
import pytest
from emberwatch.config import Brand
from emberwatch.models import Engagement
from emberwatch.sources import feed, hackernews
from emberwatch.sources.feed import MalformedEntry
from emberwatch.sources.hackernews import MalformedHit

BRAND = Brand(id="acme", name="Acme Widgets", queries=('"acme widgets"',))
QUERY = '"acme widgets"'

# sources.md section 3: a recorded search_by_date response (hits' _highlightResult omitted)
ALGOLIA_PAGE = json.loads(
    r"""
{
  "exhaustive": {"nbHits": true, "typo": true},
  "exhaustiveNbHits": true,
  "exhaustiveTypo": true,
  "hits": [
    {
      "_tags": ["comment", "author_tptacekish", "story_40345678"],
      "author": "tptacekish",
      "comment_text": "We moved to Acme Widgets last year &amp; the API is <i>fine</i>.",
      "created_at": "2024-05-13T14:05:12Z",
      "created_at_i": 1715609112,
      "objectID": "40346001",
      "parent_id": 40345990,
      "story_id": 40345678,
      "story_title": "Show HN: An open-source inventory tracker",
      "story_url": "https://github.com/example/inventory",
      "updated_at": "2024-05-13T14:06:02Z"
    },
    {
      "_tags": ["story", "author_jdoe", "story_40345500"],
      "author": "jdoe",
      "children": [40345612, 40345790],
      "created_at": "2024-05-13T13:40:00Z",
      "created_at_i": 1715607600,
      "num_comments": 2,
      "objectID": "40345500",
      "points": 31,
      "story_id": 40345500,
      "title": "Acme Widgets raises Series B",
      "updated_at": "2024-05-13T14:06:02Z",
      "url": "https://techpress.example/acme-series-b"
    }
  ],
  "hitsPerPage": 100, "nbHits": 2, "nbPages": 1, "page": 0,
  "params": "query=%22acme+widgets%22&tags=%28story%2Ccomment%29&...",
  "processingTimeMS": 2,
  "query": "\"acme widgets\""
}
"""
)
COMMENT, STORY = ALGOLIA_PAGE["hits"]


def hit(base: dict, **changes) -> dict:
    changed = copy.deepcopy(base)
    for key, value in changes.items():
        if value is ...:
            changed.pop(key, None)
        else:
            changed[key] = value
    return changed


# ---------------------------------------------------------------- Hacker News: comments


def test_comment_hit_becomes_a_mention():
    mention = hackernews.normalise(COMMENT, BRAND, QUERY)

    assert mention.source == "hackernews"
    assert mention.native_id == "40346001"
    assert mention.id == "hackernews:40346001"
    assert mention.brand == "acme"
    assert mention.query == QUERY
    # HTML to text: entity decoded, <i> dropped
    assert mention.text == "We moved to Acme Widgets last year & the API is fine."
    # the story's title is context, not the comment's own words (queries must not match on it)
    assert mention.title is None
    assert mention.raw["story_title"] == "Show HN: An open-source inventory tracker"
    assert mention.created_at == datetime(2024, 5, 13, 14, 5, 12, tzinfo=UTC)
    assert mention.url == "https://news.ycombinator.com/item?id=40346001"
    assert mention.author.handle == "tptacekish"
    assert mention.parent_id == "hackernews:40345990"
    assert mention.conversation_id == "hackernews:40345678"
    # comments have no points or num_comments
    assert mention.engagement == Engagement()
    assert mention.raw["kind"] == "comment"
    assert mention.raw["link"] == "https://github.com/example/inventory"
    assert mention.language is None


def test_comment_body_is_its_text():
    mention = hackernews.normalise(COMMENT, BRAND, QUERY)
    assert mention.body == mention.text


def test_comment_is_recognised_without_tags_by_comment_text():
    mention = hackernews.normalise(hit(COMMENT, _tags=...), BRAND, QUERY)
    assert mention.raw["kind"] == "comment"
    assert mention.text.startswith("We moved to Acme Widgets")


def test_comment_with_paragraphs_keeps_them_apart():
    mention = hackernews.normalise(
        hit(COMMENT, comment_text="<p>First.</p><p>Second &gt; first.</p>"), BRAND, QUERY
    )
    assert mention.text == "First.\n\nSecond > first."


# ---------------------------------------------------------------- Hacker News: stories


def test_story_hit_becomes_a_mention():
    mention = hackernews.normalise(STORY, BRAND, QUERY)

    assert mention.id == "hackernews:40345500"
    assert mention.title == "Acme Widgets raises Series B"
    assert mention.text == "Acme Widgets raises Series B"
    assert mention.body == ""  # nothing beyond the title
    assert mention.url == "https://news.ycombinator.com/item?id=40345500"  # permalink, not the article
    assert mention.raw["link"] == "https://techpress.example/acme-series-b"
    assert mention.raw["kind"] == "story"
    assert mention.engagement == Engagement(replies=2, score=31)
    assert mention.engagement.total == 33
    assert mention.parent_id is None
    assert mention.conversation_id == "hackernews:40345500"
    assert mention.created_at == datetime(2024, 5, 13, 13, 40, tzinfo=UTC)
    assert mention.author.handle == "jdoe"


def test_ask_hn_story_text_follows_the_title():
    story = hit(STORY, story_text="Has anyone used <b>Acme</b>?<p>Thoughts welcome.", url=None)
    mention = hackernews.normalise(story, BRAND, QUERY)
    assert mention.text.startswith("Acme Widgets raises Series B\n\nHas anyone used Acme?")
    assert mention.body.startswith("Has anyone used Acme?")
    assert mention.raw["link"] is None


def test_non_integer_counts_and_ids_are_ignored():
    story = hit(STORY, points="31", num_comments=True, story_id="40345500", author=None)
    mention = hackernews.normalise(story, BRAND, QUERY)
    assert mention.engagement == Engagement()
    assert mention.conversation_id is None
    assert mention.author.handle == "unknown"


def test_integer_object_id_is_accepted():
    mention = hackernews.normalise(hit(STORY, objectID=40345500), BRAND, QUERY)
    assert mention.id == "hackernews:40345500"


# ---------------------------------------------------------------- Hacker News: malformed hits


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (hit(STORY, objectID=...), "objectID missing"),
        (hit(STORY, objectID=""), "objectID missing"),
        (hit(STORY, objectID="   "), "objectID missing"),
        (hit(STORY, objectID=None), "objectID missing"),
        (hit(STORY, objectID=["40345500"]), "objectID missing"),
        (hit(STORY, created_at_i="1715607600"), "created_at_i is not an integer"),
        (hit(STORY, created_at_i=1715607600.5), "created_at_i is not an integer"),
        (hit(STORY, created_at_i=True), "created_at_i is not an integer"),
        (hit(STORY, created_at_i=...), "created_at_i is not an integer"),
        (hit(STORY, title=None), "has no text"),
        (hit(STORY, title="   "), "has no text"),
        (hit(COMMENT, comment_text=""), "has no text"),
        (hit(COMMENT, comment_text="<p> </p>"), "has no text"),
        (hit(COMMENT, comment_text=None), "has no text"),
    ],
)
def test_malformed_hits_raise(bad, message):
    with pytest.raises(MalformedHit, match=message):
        hackernews.normalise(bad, BRAND, QUERY)


@pytest.mark.parametrize("bad", [None, [], "40345500", 40345500])
def test_a_hit_that_is_not_an_object_raises(bad):
    with pytest.raises(MalformedHit, match="not an object"):
        hackernews.normalise(bad, BRAND, QUERY)


def test_malformed_hit_names_the_object():
    with pytest.raises(MalformedHit, match="40345500"):
        hackernews.normalise(hit(STORY, created_at_i="x"), BRAND, QUERY)


# ---------------------------------------------------------------- feeds: Google Alerts (Atom)

# sources.md section 8, verbatim apart from the feed title's quotes being escaped
GOOGLE_ALERTS = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">
  <id>tag:google.com,2005:reader/user/00651117406639347610/state/com.google/alerts/11001411275176557724</id>
  <title>Google Alert - &quot;acme widgets&quot;</title>
  <link href="https://www.google.com/alerts/feeds/00651117406639347610/11001411275176557724" rel="self"/>
  <updated>2024-05-13T14:20:01Z</updated>
  <entry>
    <id>tag:google.com,2013:googlealerts/feed:17440847249129969091</id>
    <title type="html">&lt;b&gt;Acme Widgets&lt;/b&gt; opens Berlin office - TechPress</title>
    <link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://techpress.example/acme-berlin&amp;ct=ga&amp;cd=CAIyGg&amp;usg=AOvVaw0"/>
    <published>2024-05-13T14:20:01Z</published>
    <updated>2024-05-13T14:20:01Z</updated>
    <content type="html">... &lt;b&gt;Acme Widgets&lt;/b&gt; said on Monday it will ...</content>
    <author><name/></author>
  </entry>
</feed>
"""

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel>
    <title>TechPress &amp; Friends</title>
    <link>https://techpress.example/</link>
    <description>News</description>
    <item>
      <title>Acme Widgets hires forty engineers</title>
      <link>https://techpress.example/acme-hires</link>
      <guid isPermaLink="false">techpress-2024-0513-77</guid>
      <pubDate>Mon, 13 May 2024 16:20:01 +0200</pubDate>
      <dc:creator>Jane Reporter</dc:creator>
      <description><![CDATA[<p><b>Acme</b> is <i>hiring</i>.</p><script>track()</script>]]></description>
    </item>
    <item>
      <title>No guid here</title>
      <link>https://techpress.example/no-guid</link>
      <pubDate>Mon, 13 May 2024 10:00:00 GMT</pubDate>
    </item>
    <item>
      <title>Undated Acme story</title>
      <link>https://techpress.example/undated</link>
      <guid>https://techpress.example/undated</guid>
      <description>no date on this one</description>
    </item>
  </channel>
</rss>
"""


@pytest.fixture(scope="module")
def alert_entry():
    document = feedparser.parse(GOOGLE_ALERTS)
    assert not document.bozo
    return document.entries[0]


@pytest.fixture(scope="module")
def rss():
    document = feedparser.parse(RSS)
    assert not document.bozo
    return document


def test_google_alert_entry_becomes_a_mention(alert_entry):
    mention = feed.normalise(alert_entry, BRAND, QUERY, 'Google Alert - "acme widgets"')

    assert mention.source == "feed"
    assert mention.native_id == "ga-17440847249129969091"
    assert mention.id == "feed:ga-17440847249129969091"
    # the Google redirect is unwrapped to the article
    assert mention.url == "https://techpress.example/acme-berlin"
    # <b> stripped from title and text
    assert mention.title == "Acme Widgets opens Berlin office - TechPress"
    assert mention.text == "... Acme Widgets said on Monday it will ..."
    assert "<" not in mention.title + mention.text
    assert mention.created_at == datetime(2024, 5, 13, 14, 20, 1, tzinfo=UTC)
    # no author in Google Alerts: the feed's title stands in
    assert mention.author.handle == 'Google Alert - "acme widgets"'
    assert mention.raw == {"feed": 'Google Alert - "acme widgets"'}
    assert mention.engagement == Engagement()
    assert mention.query == QUERY


def test_without_a_feed_title_the_author_is_the_article_host(alert_entry):
    mention = feed.normalise(alert_entry, BRAND, QUERY, None)
    assert mention.author.handle == "techpress.example"
    assert mention.raw == {}


def test_entry_link_unwraps_only_google_redirects():
    assert feed._entry_link({"link": "https://www.google.com/url?url=https://a.example/x&ct=ga"}) == (
        "https://a.example/x"
    )
    # not a redirect path, not Google, or a target that is not http(s): left as it is
    for link in (
        "https://www.google.com/alerts/feeds/1/2",
        "https://example.com/url?url=https://a.example/x",
        "https://www.google.com/url?url=javascript:alert(1)",
        "https://www.google.com/url?q=https://a.example/x",
    ):
        assert feed._entry_link({"link": link}) == link
    assert feed._entry_link({}) == ""


def test_native_id_uses_the_google_alert_number_or_the_id():
    assert feed._native_id({"id": "tag:google.com,2013:googlealerts/feed:123"}, "x") == "ga-123"
    assert feed._native_id({"id": " urn:uuid:42 "}, "https://a.example") == "urn:uuid:42"
    assert feed._native_id({}, "https://a.example/x") == "https://a.example/x"
    with pytest.raises(MalformedEntry, match="neither id nor link"):
        feed._native_id({}, "")


# ---------------------------------------------------------------- feeds: RSS 2.0


def test_rss_item_becomes_a_mention(rss):
    feed_title = "TechPress & Friends"
    assert rss.feed.title == feed_title
    mention = feed.normalise(rss.entries[0], BRAND, QUERY, feed_title)

    assert mention.native_id == "techpress-2024-0513-77"  # the guid
    assert mention.url == "https://techpress.example/acme-hires"
    assert mention.title == "Acme Widgets hires forty engineers"
    assert mention.text == "Acme is hiring."  # tags and the script dropped
    assert mention.created_at == datetime(2024, 5, 13, 14, 20, 1, tzinfo=UTC)  # +02:00 to UTC
    assert mention.author.handle == "Jane Reporter"


def test_rss_item_without_guid_is_keyed_by_its_link_and_titled_text(rss):
    mention = feed.normalise(rss.entries[1], BRAND, QUERY, "TechPress")
    assert mention.native_id == "https://techpress.example/no-guid"
    # no description: the title is the text
    assert mention.text == "No guid here"
    assert mention.author.handle == "TechPress"


def test_entry_without_a_date_raises(rss):
    with pytest.raises(MalformedEntry, match="no published or updated date"):
        feed.normalise(rss.entries[2], BRAND, QUERY, "TechPress")


def test_updated_date_stands_in_for_published():
    document = feedparser.parse(GOOGLE_ALERTS.replace(b"<published>2024-05-13T14:20:01Z</published>", b""))
    entry = document.entries[0]
    assert "published_parsed" not in entry
    assert feed.normalise(entry, BRAND, QUERY, None).created_at == datetime(
        2024, 5, 13, 14, 20, 1, tzinfo=UTC
    )


def test_entry_without_any_text_raises():
    entry = {
        "id": "x-1",
        "link": "https://a.example/1",
        "published_parsed": (2024, 5, 13, 14, 0, 0, 0, 134, 0),
    }
    with pytest.raises(MalformedEntry, match="x-1 has no text"):
        feed.normalise(entry, BRAND, QUERY, None)


def test_entry_without_id_or_link_raises():
    entry = {"title": "Acme", "published_parsed": (2024, 5, 13, 14, 0, 0, 0, 134, 0)}
    with pytest.raises(MalformedEntry, match="neither id nor link"):
        feed.normalise(entry, BRAND, QUERY, None)
