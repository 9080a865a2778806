"""A deterministic, realistic week of Hacker News and Google Alerts traffic about one brand.

``generate()`` returns a ``Traffic``: every post the simulated sources will ever serve, with its
creation time, so the source server can reveal them as its clock moves. The week has a daily
rhythm (busy in US/EU daytime, quiet at night and at weekends), a baseline of brand mentions in
many phrasings and languages, a few near-miss posts that a correct query filter must reject
("acme" alone, "widgets" alone, both words apart) and one fire: a burst of a few hundred angry
posts within about three hours of ``fire_at``, plus news alerts about it.
"""

from __future__ import annotations

import html
import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_FIRE_OFFSET = timedelta(days=2, hours=14)
FIRE_SPAN = timedelta(hours=3)

# Relative activity per UTC hour: Europe wakes up around 07, the US east coast at 13, the west coast
# winds down around 01; the small hours are quiet.
_HOURLY = (0.8, 0.7, 0.55, 0.4, 0.3, 0.3, 0.4, 0.6, 0.8, 0.9, 0.95, 1.0,
           1.1, 1.3, 1.5, 1.6, 1.6, 1.55, 1.45, 1.35, 1.25, 1.1, 1.0, 0.9)  # fmt: skip

# HN item ids grow with time (about 15,000 items a day); anchored at a real id of mid-May 2024.
_ID_ANCHOR = datetime(2024, 5, 13, tzinfo=UTC)
_ID_AT_ANCHOR = 40_300_000
_IDS_PER_SECOND = 0.18

_SENTIMENTS = ("positive", "neutral", "negative")
_SENTIMENT_WEIGHTS = (30, 45, 25)
_LANGS = ("en", "de", "es")
_LANG_WEIGHTS = (88, 6, 6)

_COMPETITORS = ("Globex", "Initech", "Hooli", "Vandelay Cloud", "Soylent Systems")
_FEATURES = (
    "per-widget permissions",
    "SAML SSO on the team plan",
    "a dark mode",
    "webhook retries",
    "bulk CSV export",
    "an EU region",
    "audit logs",
)
_NEWS_SITES = ("techpress.example", "cloudbeat.example", "saasweekly.example", "thestack.example")
_BLOG_SITES = ("medium.example", "dev.example", "substack.example")
_ADJECTIVES = (
    "quiet",
    "grumpy",
    "lazy",
    "rusty",
    "tiny",
    "brave",
    "cosmic",
    "sleepy",
    "nimble",
    "salty",
    "plain",
    "fuzzy",
    "stoic",
    "amber",
    "feral",
    "mellow",
)
_NOUNS = (
    "fox",
    "otter",
    "kernel",
    "pixel",
    "falcon",
    "badger",
    "lambda",
    "socket",
    "walrus",
    "comet",
    "heron",
    "daemon",
    "yak",
    "mango",
    "cobalt",
    "parser",
)

# Stories that do not mention the brand but host comments that do.
_OTHER_TITLES = (
    "The hidden cost of SaaS sprawl",
    "Postgres is enough",
    "We replaced our ERP with a spreadsheet",
    "What I learned running a B2B startup for 5 years",
    "Why every startup ends up building an admin panel",
    "The state of EU cloud sovereignty",
    "Launch HN: Tally (YC S24) - inventory counts from your phone",
)

# Story templates: (sentiment, language, form, title, body). Form "link" points at an article,
# "ask" is a text post (the body becomes story_text), "show" links to a GitHub repository.
_STORIES = (
    ("positive", "en", "link", "How we cut our inventory costs 40% with {brand}", ""),
    ("positive", "en", "link", "{brand} launches EU data residency", ""),
    ("positive", "en", "link", "{brand} open-sources its widget layout engine", ""),
    ("neutral", "en", "link", "{brand} raises Series B to expand widget automation", ""),
    (
        "neutral",
        "en",
        "ask",
        "Ask HN: Is {brand} worth it for a small team?",
        "We're 6 people, mostly using spreadsheets. {brand} looks nice but the pricing page says "
        '"contact sales" for anything useful. Anyone running it at our size?',
    ),
    ("neutral", "en", "show", "Show HN: An open-source alternative to {brand}", ""),
    ("neutral", "en", "link", "{brand} outage post-mortem", ""),
    (
        "neutral",
        "en",
        "ask",
        "Ask HN: {brand} or {competitor} for inventory tracking?",
        "Evaluating both. {competitor} is cheaper, {brand} has the better API. What did you pick and why?",
    ),
    ("negative", "en", "link", "Why we moved off {brand}", ""),
    ("negative", "en", "link", "{brand} is raising prices by {pct}% for existing customers", ""),
    (
        "negative",
        "en",
        "ask",
        "Ask HN: {brand} API timeouts every day at 14:00 UTC?",
        "Since last week our sync jobs against {brand} time out around 14:00 UTC. Support says "
        '"it\'s on our radar". Anyone else seeing this?',
    ),
    ("negative", "en", "link", "{brand} quietly removed the free tier", ""),
    ("neutral", "de", "link", "{brand} eröffnet Büro in Berlin", ""),
    ("positive", "es", "link", "{brand} lanza su API en español", ""),
)

_COMMENTS = {
    ("positive", "en"): (
        "We moved to {brand} last year & the API is *fine*. Honestly the best part is the webhooks.",
        "Big fan of {brand}. Support answered my ticket within an hour 🙌",
        "{brand} saved us weeks. The bulk import just works.",
        "Credit where it's due: {brand}'s docs are excellent. Compare that to {competitor}...",
        "We run about {n}k widgets through {brand} a day and it's been boring in the best way.",
        "The new {brand} dashboard is a huge improvement, finally keyboard shortcuts.",
    ),
    ("neutral", "en"): (
        'Does anyone know what {brand} charges for the team plan? The pricing page says "contact sales".',
        "How does {brand} compare to {competitor}? We're evaluating both.",
        "Is there a way to export everything from {brand} to CSV? Asking for a migration.",
        "Feature request for {brand}, if anyone from there reads HN: {feature}.",
        "{brand} announced this at their conference last week:\n\nhttps://{domain}/blog/roadmap",
        "We use {brand} for the catalogue and {competitor} for billing. Works, but the glue code is ugly.",
        "Genuine question: is {brand} profitable, or is this all VC money?",
    ),
    ("negative", "en"): (
        "{brand} has been down for us for {n}0 minutes. Status page says all green, of course.",
        "The {brand} price increase is ridiculous: $49 -> $79 per seat with 30 days' notice.",
        "We left {brand} after their API kept timing out during peak hours.",
        "{brand} support is slow, 3 days for a reply to a P1 ticket 😤",
        'Still waiting on {feature} from {brand}. It\'s been "on the roadmap" for two years.',
        "> {brand} is enterprise-ready\n\nNot in my experience. We lost a week to their rate limits.",
        "Every time {brand} ships a redesign, something I use daily disappears 🤦",
    ),
    ("positive", "de"): (
        "Wir nutzen {brand} seit zwei Jahren \N{EN DASH} läuft stabil, Support ist schnell. 👍",
    ),
    ("neutral", "de"): ("Weiß jemand, ob {brand} inzwischen Rechenzentren in der EU hat?",),
    ("negative", "de"): ("Die Preise von {brand} sind für kleine Teams einfach zu hoch.",),
    ("positive", "es"): ("Usamos {brand} en producción y la verdad es que funciona muy bien.",),
    ("neutral", "es"): ("¿Alguien sabe cuánto cuesta el plan de equipo de {brand}?",),
    ("negative", "es"): ("{brand} subió los precios otra vez. Nos vamos a {competitor}.",),
}

# Mentions that name the brand only by its handle or domain: a phrase query does not find them.
_HANDLE_ONLY = (
    ("neutral", "Anyone using {handle} with Terraform? The provider docs are thin."),
    ("negative", "{handle} your status page has been yellow for an hour, any ETA?"),
    ("negative", "Pricing on {domain} changed again, now it's per widget instead of per seat."),
    ("positive", "Shoutout to {handle}, they fixed my bug report in a day."),
)

# Posts that are not about the brand but share a word with it.
_NEAR_STORIES = (
    "Let's Encrypt: {FIRST} v1 clients stop working next month",
    "Building accessible {last} in GTK 4",
    "Wile E. Coyote v. {first} Corp. (1990)",
    "The {first} dashboard now lets you pin custom {last}",
)
_NEAR_COMMENTS = (
    "Just use certbot or any other {FIRST} client, renewals are automatic.",
    "Flutter {last} are nice until you need custom layouts.",
    "The new {first} Analytics dashboard lets you drag {last} around, but it's slow.",
    "Looks like something the {first} corporation would sell to Wile E. Coyote 😄",
    "KDE Plasma {last} have come a long way since 4.0.",
)

# The upset post that starts the fire: (title, a fragment people quote).
_FIRE_ORIGINALS = (
    ("{brand} deleted my data and support ignored me for 3 days", "support ignored me for 3 days"),
    ("{brand} deleted all my data and support has ignored me for 3 days", "deleted all my data"),
    ("{brand} wiped my account \N{EN DASH} support ignored me for three days", "ignored me for three days"),
)
_FIRE_STORIES = (
    ("en", "{brand} deleted a customer's data, then ignored them for 3 days"),
    ("en", "Ask HN: Has {brand} deleted your data too?"),
    ("en", "{brand} is deleting customer data \N{EN DASH} what's going on?"),
    ("en", "Tell HN: {brand} lost our production data today"),
    ("en", "{brand} data loss incident: customers report empty workspaces"),
    ("de", "{brand} löscht Kundendaten \N{EN DASH} Support schweigt seit 3 Tagen"),
    ("es", "{brand} borró los datos de un cliente y lo ignoró durante 3 días"),
)
_FIRE_COMMENTS = (
    "> {quote}\n\nThis is exactly why we left {brand}. Same thing happened to us last year.",
    "Just checked: our {brand} workspace is empty too. Ticket open for {n} hours, no reply.",
    "{brand} deleting data AND ignoring support for 3 days? That's a company-ending combo.",
    "Can confirm. {brand} wiped two of our projects this morning. 😡",
    "If you're on {brand}, export your data *now*: https://{domain}/settings/export",
    "Cancelled our {brand} subscription. Not waiting to be next.",
    "The worst part isn't the bug, it's {brand} ignoring support tickets for 3 days.",
    '{brand} ({handle}), care to respond? Your status page still says "All systems operational".',
    "Anyone from {brand} here? This needs an official statement, not silence.",
    "Reminder that {brand}'s SLA says 99.99%. Deleting data isn't in there.",
    "> {quote}\n\nHow is this even legal? {brand} has our customers' records.",
    "Third {brand} data-loss story I've seen today. This is getting scary 🔥",
    "Uns hat {brand} heute auch Daten gelöscht. Support antwortet nicht. 😠",
    "A nosotros también: {brand} borró nuestros datos y nadie responde.",
)

# Google Alerts templates: (sentiment, language, title, snippet); {b} is the highlighted brand.
_ALERTS = (
    (
        "positive",
        "en",
        "{b} raises $40M Series B to expand widget automation",
        "{b} said on Monday it has raised $40 million in a Series B round led by ...",
    ),
    (
        "neutral",
        "en",
        "{b} opens Berlin office",
        "... {b} said on Tuesday it will open its first German office in Berlin, hiring 40 engineers ...",
    ),
    (
        "positive",
        "en",
        "{b} named a leader in widget automation report",
        "Analysts placed {b} ahead of {competitor} for the second year running ...",
    ),
    (
        "neutral",
        "en",
        "{b} Review: Pros, Cons & Pricing",
        "Is {b} worth it? We tested the team plan for 30 days & here's what we found ...",
    ),
    (
        "negative",
        "en",
        "{b} raises prices for existing customers",
        "Customers of {b} will pay up to {pct}% more from July, the company's pricing page shows ...",
    ),
    (
        "neutral",
        "en",
        "{b} vs {competitor}: which inventory tool is right for you?",
        "Both {b} and {competitor} promise real-time stock levels, but ...",
    ),
    (
        "positive",
        "en",
        "How {b} grew to 10,000 customers without a sales team",
        "... the founders of {b} credit a self-serve model and an API developers actually like ...",
    ),
    (
        "neutral",
        "en",
        "{b} appoints former {competitor} executive as CFO",
        "{b} has named a new chief financial officer as it prepares for ...",
    ),
    (
        "positive",
        "en",
        "{b} launches EU data residency for enterprise customers",
        "Enterprise customers of {b} can now keep their data in Frankfurt ...",
    ),
    (
        "negative",
        "en",
        "{b} users report slow dashboards after update",
        "Several users of {b} complained on social media that the new dashboard ...",
    ),
    (
        "neutral",
        "de",
        "{b} eröffnet Niederlassung in München",
        "... {b} will in München rund 30 neue Stellen schaffen, teilte das Unternehmen mit ...",
    ),
    (
        "positive",
        "es",
        "{b} cierra una ronda de financiación de 40 millones",
        "La empresa {b} anunció este martes una ronda de financiación ...",
    ),
)
_FIRE_ALERTS = (
    (
        "en",
        "{b} customers report data loss after outage",
        "Customers of {b} said on social media that their workspaces were emptied ...",
    ),
    (
        "en",
        "{b} apologises after deleting customer data",
        '... {b} said a faulty cleanup job removed data from a "small number" of accounts ...',
    ),
    (
        "en",
        "Outage at {b} wipes customer projects",
        "An incident at {b} deleted projects for some customers, who say support did not respond ...",
    ),
    (
        "en",
        "Users slam {b} support over three-day silence",
        "The post, which topped Hacker News within an hour, accuses {b} of ignoring ...",
    ),
    (
        "de",
        "{b}: Kunden melden Datenverlust",
        "Nutzer von {b} berichten, dass ihre Daten gelöscht wurden ...",
    ),
    (
        "es",
        "{b} pierde datos de clientes tras un fallo",
        "Clientes de {b} denuncian que sus datos desaparecieron ...",
    ),
)
_PUBLICATIONS = {
    "en": (
        ("TechPress", "techpress.example"),
        ("CloudBeat", "cloudbeat.example"),
        ("SaaS Weekly", "saasweekly.example"),
        ("Startup Ledger", "startupledger.example"),
        ("Finance Herald", "financeherald.example"),
        ("DevOps Daily", "devopsdaily.example"),
    ),
    "de": (("Digital Zeitung", "digitalzeitung.example"), ("Gründerblatt", "gruenderblatt.example")),
    "es": (("El Diario Tech", "eldiariotech.example"), ("Noticias Cloud", "noticiascloud.example")),
}

_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)]")
_ITALIC = re.compile(r"\*([^*\n]+)\*")


@dataclass(frozen=True, slots=True)
class SimPost:
    """One simulated post.

    ``title`` is plain text for HN stories, HTML (with ``<b>`` highlighting) for alert entries and
    empty for comments. ``text`` is HN HTML (``comment_text`` / ``story_text``) or the alert snippet
    HTML. ``url`` is the linked article (for comments: their story's link; "" for text posts).
    ``about_brand`` is False for near-miss posts; ``fire`` marks the burst and its news.
    """

    kind: str  # "hn_story" | "hn_comment" | "alert_entry"
    native_id: str
    created: datetime
    author: str
    title: str
    text: str
    url: str
    sentiment: str  # "positive" | "neutral" | "negative"
    points: int | None = None
    num_comments: int | None = None
    story_id: int | None = None
    parent_id: int | None = None
    story_title: str | None = None
    about_brand: bool = True
    fire: bool = False


@dataclass(frozen=True, slots=True)
class Traffic:
    """Every post of the simulated window ``[start, end)``, sorted by creation time."""

    brand: str
    start: datetime
    end: datetime
    fire_at: datetime
    posts: list[SimPost]


def generate(
    brand_name: str = "Acme Widgets",
    *,
    start: datetime,
    days: int = 7,
    seed: int = 7,
    fire_at: datetime | None = None,
) -> Traffic:
    """Generate ``days`` of traffic from ``start`` (aware); the same inputs give identical output."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    start = start.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(days=days)
    fire_at = (
        start + DEFAULT_FIRE_OFFSET if fire_at is None else fire_at.astimezone(UTC).replace(microsecond=0)
    )
    if not start <= fire_at < end:
        raise ValueError(f"fire_at {fire_at} is outside the window {start} .. {end}")
    builder = _Builder(brand_name, random.Random(seed))
    for day in range(days):
        builder.day(start + timedelta(days=day))
    builder.fire(fire_at)
    return Traffic(brand=brand_name, start=start, end=end, fire_at=fire_at, posts=builder.posts(start, end))


@dataclass(slots=True, eq=False)
class _Draft:
    """A Hacker News item before ids are assigned; ``emit`` is False for stories outside the traffic."""

    kind: str
    created: datetime
    author: str
    sentiment: str = "neutral"
    title: str = ""
    text: str = ""
    url: str = ""
    points: int | None = None
    story: _Draft | None = None
    extra_comments: int = 0
    about_brand: bool = True
    fire: bool = False
    emit: bool = True
    id: int = 0
    parent_id: int | None = None
    replies: int = 0


class _Builder:
    """Accumulates drafts and alert entries, then links ids into the final posts."""

    def __init__(self, brand: str, rng: random.Random) -> None:
        words = brand.split()
        self.rng = rng
        self.brand = brand
        self.handle = "@" + "".join(word[:1].upper() + word[1:] for word in words)
        self.domain = "".join(words).lower() + ".com"
        self.first, self.last = words[0], words[-1]
        self.phrases = (
            brand,
            brand.lower(),
            " ".join([self.first.upper(), *words[1:]]),
            brand.upper(),
            "-".join(word.lower() for word in words),
        )
        self.drafts: list[_Draft] = []
        self.alerts: list[SimPost] = []
        self.alert_ids: set[int] = set()
        names: list[str] = []
        while len(names) < 240:
            adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
            name = rng.choice(
                (
                    f"{adjective}{noun}",
                    f"{adjective}_{noun}",
                    f"{noun}{rng.randint(1, 999)}",
                    f"{adjective[0]}{noun}",
                    f"{noun}_{adjective}",
                )
            )
            if name not in names:
                names.append(name)
        self.authors = names
        self.author_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(names))]

    # -- building blocks ------------------------------------------------------------------------------

    def author(self) -> str:
        return self.rng.choices(self.authors, self.author_weights)[0]

    def phrase(self) -> str:
        """The brand as people type it: mostly proper case, sometimes lower, upper or hyphenated."""
        return self.rng.choices(self.phrases, (62, 18, 10, 5, 5))[0]

    def fill(self, template: str, **extra: str) -> str:
        rng = self.rng
        values = {
            "brand": self.phrase(),
            "handle": self.handle,
            "domain": self.domain,
            "competitor": rng.choice(_COMPETITORS),
            "feature": rng.choice(_FEATURES),
            "pct": str(rng.choice((15, 20, 30, 40))),
            "n": str(rng.randint(2, 9)),
            "first": self.first,
            "FIRST": self.first.upper(),
            "last": self.last.lower(),
        }
        values.update(extra)
        return template.format(**values)

    def points(self) -> int:
        return min(800, int(self.rng.paretovariate(1.2) * 2))

    def moment(self, day_start: datetime) -> datetime:
        """A second within the 24 hours from ``day_start``, weighted by the hourly rhythm."""
        hours = range(24)
        weights = [_HOURLY[(day_start + timedelta(hours=h)).hour] for h in hours]
        hour = self.rng.choices(hours, weights)[0]
        return day_start + timedelta(hours=hour, seconds=self.rng.randrange(3600))

    def external_story(self, created: datetime) -> _Draft:
        """A story that does not mention the brand but hosts comments that do."""
        title = self.rng.choice(_OTHER_TITLES)
        draft = _Draft(
            "hn_story",
            created,
            self.author(),
            title=title,
            emit=False,
            about_brand=False,
            url=f"https://{self.rng.choice(_NEWS_SITES)}/{_slug(title)}",
        )
        self.drafts.append(draft)
        return draft

    def story(
        self, created: datetime, sentiment: str, form: str, title: str, body: str, **flags: bool
    ) -> _Draft:
        author = self.author()
        if form == "link":
            url = f"https://{self.rng.choice(_NEWS_SITES + _BLOG_SITES)}/{created:%Y/%m}/{_slug(title)}"
        elif form == "show":
            url = f"https://github.com/{author}/{_slug(title.removeprefix('Show HN: '))}"
        else:
            url = ""
        draft = _Draft(
            "hn_story",
            created,
            author,
            sentiment,
            title=title,
            text=_hn_html(body) if body else "",
            url=url,
            points=self.points(),
            extra_comments=self.rng.randint(0, 25),
            **flags,
        )
        self.drafts.append(draft)
        return draft

    def comment(self, created: datetime, story: _Draft, sentiment: str, text: str, **flags: bool) -> None:
        self.drafts.append(
            _Draft("hn_comment", created, self.author(), sentiment, text=_hn_html(text), story=story, **flags)
        )

    def alert(
        self, created: datetime, sentiment: str, lang: str, title: str, snippet: str, fire: bool
    ) -> None:
        rng = self.rng
        publication, site = rng.choice(_PUBLICATIONS[lang])
        brand = rng.choices((self.brand, self.phrases[2], self.brand.lower()), (85, 10, 5))[0]
        values = {"competitor": rng.choice(_COMPETITORS), "pct": str(rng.choice((15, 20, 30)))}
        plain_title = title.format(b=self.brand, **values)
        alert_id = rng.randrange(10**18, 2**64)
        while alert_id in self.alert_ids:
            alert_id = rng.randrange(10**18, 2**64)
        self.alert_ids.add(alert_id)
        self.alerts.append(
            SimPost(
                kind="alert_entry",
                native_id=str(alert_id),
                created=created,
                author="",
                title=_highlight(title, brand, values) + html.escape(f" - {publication}"),
                text=_highlight(snippet, brand, values),
                sentiment=sentiment,
                fire=fire,
                url=f"https://www.{site}/{created:%Y/%m/%d}/{_slug(plain_title)}",
            )
        )

    def sentiment_and_lang(self) -> tuple[str, str]:
        rng = self.rng
        return rng.choices(_SENTIMENTS, _SENTIMENT_WEIGHTS)[0], rng.choices(_LANGS, _LANG_WEIGHTS)[0]

    def brand_story(self, created: datetime) -> _Draft:
        sentiment, lang = self.sentiment_and_lang()
        candidates = [s for s in _STORIES if s[0] == sentiment and s[1] == lang] or [
            s for s in _STORIES if s[0] == sentiment and s[1] == "en"
        ]
        _, _, form, title, body = self.rng.choice(candidates)
        competitor = self.rng.choice(_COMPETITORS)
        return self.story(
            created,
            sentiment,
            form,
            self.fill(title, competitor=competitor),
            self.fill(body, competitor=competitor),
        )

    def brand_comment(self, created: datetime, story: _Draft) -> None:
        if self.rng.random() < 0.06:
            sentiment, template = self.rng.choice(_HANDLE_ONLY)
        else:
            sentiment, lang = self.sentiment_and_lang()
            template = self.rng.choice(_COMMENTS[sentiment, lang])
        self.comment(created, story, sentiment, self.fill(template))

    # -- the week -------------------------------------------------------------------------------------

    def day(self, day_start: datetime) -> None:
        """One day of baseline: brand stories with their threads, comments, alerts and near-misses."""
        rng = self.rng
        weekend = day_start.weekday() >= 5
        budget = rng.randint(38, 52) if weekend else rng.randint(55, 80)
        alerts = rng.randint(9, 13) if weekend else rng.randint(14, 20)
        near_misses = rng.randint(1, 3) if weekend else rng.randint(2, 5)
        threads = [
            self.external_story(day_start - timedelta(seconds=rng.randint(600, 12 * 3600)))
            for _ in range(rng.randint(4, 8))
        ]
        used = 0
        while used < budget:
            created = self.moment(day_start)
            if rng.random() < 0.22:
                story = self.brand_story(created)
                used += 1
                for _ in range(min(rng.choice((0, 0, 1, 2, 3, 5)), budget - used)):
                    self.brand_comment(
                        created + timedelta(seconds=30 + int(rng.expovariate(1 / 5400))), story
                    )
                    used += 1
            else:
                self.brand_comment(created, rng.choice(threads))
                used += 1
        for _ in range(alerts):
            sentiment, lang, title, snippet = rng.choices(
                _ALERTS, [12 if a[1] == "en" else 5 for a in _ALERTS]
            )[0]
            self.alert(self.moment(day_start), sentiment, lang, title, snippet, fire=False)
        for _ in range(near_misses):
            created = self.moment(day_start)
            if rng.random() < 0.4:
                self.story(
                    created, "neutral", "link", self.fill(rng.choice(_NEAR_STORIES)), "", about_brand=False
                )
            else:
                self.comment(
                    created,
                    rng.choice(threads),
                    "neutral",
                    self.fill(rng.choice(_NEAR_COMMENTS)),
                    about_brand=False,
                )

    def fire(self, fire_at: datetime) -> None:
        """The upset post at ``fire_at``, a first wave of replies within minutes, then a burst rising for ~1 h
        and fading by 3 h."""
        rng = self.rng
        title, quote = rng.choice(_FIRE_ORIGINALS)
        original = self.story(fire_at, "negative", "link", self.fill(title, brand=self.brand), "", fire=True)
        original.author = f"throwaway{rng.randint(10000, 99999)}"
        original.url = f"https://{rng.choice(_BLOG_SITES)}/@{original.author}/{_slug(original.title)}"
        original.points = rng.randint(600, 1400)
        original.extra_comments = rng.randint(150, 350)
        stories = [original]
        elsewhere = [self.external_story(fire_at - timedelta(hours=rng.uniform(1, 8))) for _ in range(3)]
        span = FIRE_SPAN.total_seconds()
        # The first wave: an angry post that catches on draws its first replies and reposts within minutes
        # (about twenty in the first ten), then the bulk rises for an hour and fades.
        first_wave = [int(min(rng.expovariate(1 / 240), 540)) + 20 for _ in range(rng.randint(18, 26))]
        bulk = [int(rng.triangular(30, span, span / 3)) for _ in range(rng.randint(170, 260))]
        for offset in sorted(first_wave + bulk):
            created = fire_at + timedelta(seconds=offset)
            if rng.random() < 0.06:
                lang, repost = rng.choices(_FIRE_STORIES, [8 if s[0] == "en" else 3 for s in _FIRE_STORIES])[
                    0
                ]
                story = self.story(
                    created,
                    "negative",
                    "ask" if repost.startswith("Ask HN") else "link",
                    self.fill(repost),
                    "",
                    fire=True,
                )
                story.points = rng.randint(2, 30) + int(offset / span * rng.randint(60, 300))
                stories.append(story)
                continue
            roll = rng.random()
            story = original if roll < 0.68 else rng.choice(stories) if roll < 0.9 else rng.choice(elsewhere)
            self.comment(
                created, story, "negative", self.fill(rng.choice(_FIRE_COMMENTS), quote=quote), fire=True
            )
        for _ in range(rng.randint(4, 6)):
            lang, title, snippet = rng.choices(
                _FIRE_ALERTS, [8 if a[0] == "en" else 3 for a in _FIRE_ALERTS]
            )[0]
            created = fire_at + timedelta(seconds=rng.randint(90 * 60, 9 * 3600))
            self.alert(created, "negative", lang, title, snippet, fire=True)

    # -- finishing ------------------------------------------------------------------------------------

    def posts(self, start: datetime, end: datetime) -> list[SimPost]:
        """Assign time-ordered HN ids, link comments into threads and keep what falls in the window."""
        rng = self.rng
        drafts = sorted(self.drafts, key=lambda d: d.created)
        last_id = 0
        for draft in drafts:
            elapsed = (draft.created - _ID_ANCHOR).total_seconds()
            draft.id = last_id = max(last_id + 1, _ID_AT_ANCHOR + int(elapsed * _IDS_PER_SECOND))
        kept = [d for d in drafts if d.emit and start <= d.created < end]
        threads: dict[int, list[int]] = {}
        for draft in kept:
            if draft.story is None:
                continue
            story, earlier = draft.story, threads.setdefault(draft.story.id, [])
            roll = rng.random()
            if earlier and roll < 0.3:
                draft.parent_id = rng.choice(earlier)
            elif roll < 0.45 and draft.id - story.id > 1:  # a reply to a comment that does not mention us
                draft.parent_id = rng.randint(story.id + 1, draft.id - 1)
            else:
                draft.parent_id = story.id
            earlier.append(draft.id)
            story.replies += 1
        posts = [_to_post(d) for d in kept]
        posts += [a for a in self.alerts if start <= a.created < end]
        return sorted(posts, key=lambda p: (p.created, p.kind, p.native_id))


def _to_post(draft: _Draft) -> SimPost:
    common = {
        "native_id": str(draft.id),
        "created": draft.created,
        "author": draft.author,
        "text": draft.text,
        "sentiment": draft.sentiment,
        "about_brand": draft.about_brand,
        "fire": draft.fire,
    }
    if draft.story is None:
        return SimPost(
            kind="hn_story",
            title=draft.title,
            url=draft.url,
            points=draft.points,
            num_comments=draft.replies + draft.extra_comments,
            story_id=draft.id,
            **common,
        )
    return SimPost(
        kind="hn_comment",
        title="",
        url=draft.story.url,
        story_id=draft.story.id,
        parent_id=draft.parent_id,
        story_title=draft.story.title,
        **common,
    )


def _hn_escape(text: str) -> str:
    """Escape text the way HN's API does, including ``&#x27;`` and ``&#x2F;``."""
    return html.escape(text, quote=True).replace("/", "&#x2F;")


def _hn_html(text: str) -> str:
    """Render plain text as HN comment HTML: ``<p>`` between paragraphs, links, ``*italics*``."""
    paragraphs = []
    for paragraph in text.split("\n\n"):
        pieces, position = [], 0
        for match in _URL.finditer(paragraph):
            pieces.append(_ITALIC.sub(r"<i>\1</i>", _hn_escape(paragraph[position : match.start()])))
            link = _hn_escape(match.group())
            pieces.append(f'<a href="{link}" rel="nofollow">{link}</a>')
            position = match.end()
        pieces.append(_ITALIC.sub(r"<i>\1</i>", _hn_escape(paragraph[position:])))
        paragraphs.append("".join(pieces))
    return "<p>".join(paragraphs)


def _highlight(template: str, brand: str, values: dict[str, str]) -> str:
    """Escape an alert template to HTML with the brand wrapped in ``<b>``, as Google highlights it."""
    marker = "\x00"
    return html.escape(template.format(b=marker, **values)).replace(marker, f"<b>{html.escape(brand)}</b>")


def _slug(text: str) -> str:
    """A URL slug: ASCII, lower case, hyphenated, at most 60 characters cut at a word boundary."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug if len(slug) <= 60 else slug[:60].rsplit("-", 1)[0]
