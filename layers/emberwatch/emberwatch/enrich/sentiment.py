"""Tone of a post: a label (positive / neutral / negative), a score in [-1, 1], and why.

The default is VADER (`vaderSentiment`): rule-based, offline, its lexicon ships with the package,
about 30 µs a post. It handles negation ("not good"), intensifiers ("really", ALL CAPS, "!!!"),
contrast ("but") and emoji (read through their names). Emberwatch adds what care posts need:

- a care lexicon: words VADER lacks or reads in another sense ("outage", "crashing", "laggy";
  "support" and "care" are nouns here, "please" and "help" mark requests, "joke" is an insult),
  and the common tone words of German, Spanish, French, Portuguese, Italian and Dutch, with their
  negators (nicht, kein, pas, jamais, nunca, sin, não, non, niet, geen) so "nicht gut" and
  "sin problemas" turn like "not good";
- care phrases with no lexicon word in them ("not working", "still waiting", "charged twice",
  "no funciona", "ne marche pas"), added on VADER's own valence scale;
- emoji VADER's emoji names leave neutral (😡 "pouting face", 🤬, 👎, 👍, 🙌) read as a word;
- words in quotes are someone else's ('next day delivery', "we value your feedback"): left out;
- sarcasm cues VADER misses ("great, another outage", "thanks for nothing", "/s", 🙄): a post
  with one cannot be positive or neutral; its score flips to at least -SARCASM_FLOOR.

Thresholds: negative at compound <= -0.05 (VADER's convention), positive at >= 0.35 (VADER uses
0.05). The asymmetry is deliberate: a missed complaint costs the care team more than a neutral
post looked at once, so any negative lean counts; but one mild word must not make a request or a
report positive ("fine" 0.8, "solid" 0.6, "thanks" in "thanks in advance"): under VADER's
normalisation v / sqrt(v² + 15) a single word of valence 1.4 or less scores at most 0.34, one of
1.5 or more ("good" 1.9, "great" 3.1) reaches the label.

Cold start: importing this module does not import vaderSentiment. The analyzer (and its 7,500-word
lexicon) is built on the first call, once per container.

`ComprehendTone` is the alternative a brand can choose (`tone: comprehend`): Amazon Comprehend's
DetectSentiment / BatchDetectSentiment behind the same interface.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

POSITIVE_AT = 0.35
NEGATIVE_AT = -0.05
SARCASM_FLOOR = 0.3
MAX_CHARS = 3000  # VADER is linear in length; a feed article's first 3,000 characters carry its tone
LABELS = ("positive", "neutral", "negative")
TONE_KINDS = ("vader", "comprehend")
# Languages whose tone words the default analyzer knows (VADER's English and the care lexicon's).
LEXICON_LANGUAGES = frozenset({"en", "de", "es", "fr", "pt", "it", "nl"})


@dataclass(frozen=True, slots=True)
class Tone:
    label: str  # "positive" | "neutral" | "negative"
    score: float  # -1 (most negative) .. 1 (most positive)
    reasons: tuple[str, ...] = ()


def label_for(score: float) -> str:
    """The label a score in [-1, 1] gets under Emberwatch's thresholds."""
    if score <= NEGATIVE_AT:
        return "negative"
    if score >= POSITIVE_AT:
        return "positive"
    return "neutral"


class ToneAnalyzer(Protocol):
    """What the scanner needs from a tone backend: one post, or many at once."""

    name: str

    def score(self, text: str, language: str | None = None) -> Tone: ...

    def score_many(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[Tone]: ...


# ------------------------------------------------------------------ the care lexicon (VADER scale)

# Values are on VADER's -4..4 scale, set next to the nearest VADER word ("outage" like "error").
CARE_LEXICON: dict[str, float] = {
    # English words VADER lacks
    "outage": -2.0,
    "outages": -2.0,
    "downtime": -1.8,
    "down": -1.2,
    "offline": -0.8,
    "crashing": -1.7,
    "crashes": -1.7,
    "crashed": -1.7,
    "freezing": -1.2,
    "freezes": -1.2,
    "bug": -1.2,
    "bugs": -1.2,
    "buggy": -1.8,
    "glitch": -1.2,
    "glitchy": -1.5,
    "laggy": -1.4,
    "slow": -1.2,
    "slower": -1.2,
    "unusable": -2.5,
    "unreliable": -1.8,
    "overpriced": -1.8,
    "overcharged": -2.0,
    "ripoff": -2.5,
    "rip-off": -2.5,
    "junk": -1.9,
    "garbage": -2.0,
    "trash": -1.9,
    "nightmare": -2.5,
    "ghosted": -1.8,
    "throttled": -1.2,
    "throttles": -1.2,
    "issue": -1.0,
    "issues": -1.0,
    "delay": -1.0,
    "delays": -1.0,
    "fixed": 1.0,
    "sorted": 0.5,
    "quick": 1.0,
    "quickly": 0.8,
    "fast": 1.0,
    "faster": 1.0,
    "speedy": 1.2,
    "smooth": 1.5,
    "seamless": 1.8,
    "reliable": 1.5,
    "shoutout": 1.5,
    "bravo": 2.3,
    # VADER words read differently in care posts
    "joke": -1.5,  # "your support is a joke"
    "like": 0.5,  # mostly "looks like", "would like to"
    "help": 0.5,  # "need help" asks; it does not praise
    "hope": 0.5,
    "wish": 0.5,
    "lol": 1.0,  # often mocking under a complaint
    # German
    "schlecht": -2.0,
    "schlechter": -2.1,
    "katastrophe": -2.8,
    "katastrophal": -2.8,
    "ärgerlich": -1.8,
    "nervig": -1.7,
    "unverschämt": -2.3,
    "frechheit": -2.3,
    "enttäuscht": -2.1,
    "enttäuschend": -2.1,
    "störung": -1.8,
    "ausfall": -1.8,
    "totalausfall": -2.5,
    "kaputt": -2.0,
    "fehler": -1.5,
    "mies": -2.0,
    "schrecklich": -2.5,
    "furchtbar": -2.5,
    "wütend": -2.5,
    "abzocke": -2.7,
    "gut": 1.9,
    "danke": 1.9,
    "dank": 1.9,
    "großartig": 3.0,
    "genial": 2.8,
    "prima": 2.0,
    "klasse": 2.0,
    "perfekt": 2.7,
    "zufrieden": 1.9,
    "hervorragend": 3.0,
    "freundlich": 1.8,
    "hilfreich": 1.8,
    "gelöst": 1.1,
    "behoben": 1.1,
    "schnell": 0.8,
    # Spanish
    "pésimo": -2.8,
    "pésima": -2.8,
    "malo": -2.0,
    "mala": -2.0,
    "mal": -1.5,
    "vergüenza": -2.0,
    "caída": -1.5,
    "falla": -1.5,
    "fallo": -1.5,
    "roto": -2.0,
    "rota": -2.0,
    "estafa": -2.7,
    "harto": -1.8,
    "harta": -1.8,
    "decepcionado": -2.1,
    "decepcionada": -2.1,
    "lento": -1.0,
    "lenta": -1.0,
    "peor": -2.1,
    "problema": -1.7,
    "problemas": -1.7,
    "gracias": 1.9,
    "excelente": 3.0,
    "genio": 2.0,
    "buenísimo": 2.8,
    "bueno": 1.9,
    "buena": 1.9,
    "encanta": 3.2,
    "encantó": 3.2,
    "rápido": 1.0,
    "rápida": 1.0,
    "perfecto": 2.7,
    "resolvió": 1.1,
    "resuelto": 1.1,
    "solucionado": 1.1,
    "amable": 1.8,
    "puntual": 1.2,
    # French
    "nul": -2.0,
    "nulle": -2.0,
    "panne": -1.8,
    "honteux": -2.3,
    "honte": -2.0,
    "inadmissible": -2.5,
    "arnaque": -2.7,
    "déçu": -2.1,
    "déçue": -2.1,
    "décevant": -2.1,
    "lent": -1.0,
    "lente": -1.0,
    "cassé": -2.0,
    "erreur": -1.5,
    "marre": -1.8,
    "pire": -2.1,
    "inacceptable": -2.5,
    "scandaleux": -2.5,
    "énervé": -1.8,
    "mauvais": -2.5,
    "mauvaise": -2.5,
    "bon": 1.9,
    "bonne": 1.9,
    "bien": 1.5,
    "merci": 1.9,
    "génial": 2.8,
    "géniale": 2.8,
    "parfait": 2.7,
    "rapide": 1.0,
    "résolu": 1.1,
    "réglé": 1.1,
    "adore": 3.0,
    "ravi": 2.5,
    "ravie": 2.5,
    "efficace": 1.8,
    "sympa": 1.8,
    "top": 1.8,
    "pénible": -1.8,
    "plante": -1.5,
    # Portuguese
    "péssimo": -2.8,
    "péssima": -2.8,
    "ruim": -2.0,
    "horrível": -2.5,
    "vergonha": -2.0,
    "atrasou": -1.0,
    "atrasada": -1.0,
    "atrasado": -1.0,
    "ótimo": 2.8,
    "ótima": 2.8,
    "obrigado": 1.9,
    "obrigada": 1.9,
    "satisfeito": 1.9,
    "satisfeita": 1.9,
    "recomendo": 1.5,
    # Italian
    "pessimo": -2.8,
    "pessima": -2.8,
    "vergognoso": -2.3,
    "guasto": -1.8,
    "ottimo": 2.8,
    "ottima": 2.8,
    "grazie": 1.9,
    "perfetto": 2.7,
    "veloce": 1.0,
    # Dutch
    "slecht": -2.0,
    "storing": -1.8,
    "kapot": -2.0,
    "geweldig": 2.8,
    "bedankt": 1.9,
    "snel": 0.8,
    # care words VADER lacks (English, second round)
    "expensive": -1.0,
    "pricey": -0.8,
    "overheats": -1.5,
    "overheating": -1.5,
    "legend": 2.5,
    "legends": 2.5,
    "professional": 1.5,
    "professionally": 1.5,
    "flawless": 2.5,
    "hideous": -2.3,
    "star": 2.0,  # "an absolute star"; ratings ("5 stars") are a phrase
    "genius": 2.5,
    "absurd": -2.0,
    "bricked": -2.5,
    "unmöglich": -2.0,
    "zuverlässig": 1.8,
    "absurdo": -2.0,
    "buenísimos": 2.8,
    "buenísimas": 2.8,
    "nickel": 1.8,  # French slang: spotless
    "fijn": 1.8,
    "slaps": 2.0,  # slang: is excellent
    "accurate": 1.2,
    "props": 1.8,
    "valeu": 1.9,
    "yikes": -1.5,
    "dies": -2.0,
    "stale": -1.0,
    "fuss": -1.0,  # so "no fuss" reads as praise
    "disastro": -3.0,
    "desastre": -3.0,
    "koud": -1.0,
}
# VADER words that are mostly not evaluative in care posts; removed (not zeroed) so that a
# negator before them still reaches the next word.
CARE_NEUTRAL = ("support", "care", "please", "pretty", "well", "sure", "sin")
# Negators VADER does not know; "no" it already has. "zero problems" reads like "no problems".
EXTRA_NEGATORS = frozenset(
    {"zero"}
    | {"nicht", "nich", "kein", "keine", "keinen", "keiner", "nie", "niemals", "nichts"}
    | {"nunca", "jamás", "tampoco", "ni", "sin"}
    | {"pas", "jamais", "aucun", "aucune", "sans", "rien"}
    | {"não", "nem", "ninguém", "nenhum", "nenhuma"}
    | {"non", "mai", "niente", "nessuno", "nessuna"}
    | {"niet", "geen", "nooit"}
)
# Intensifiers VADER does not know, read as "very": "super frustrating", "sehr gut", "muy malo".
# "super" counts only before a tone word; alone it is praise ("super!").
CARE_BOOSTERS = frozenset(
    {"super", "sehr", "echt", "wirklich", "mega", "muy", "realmente", "très", "vraiment", "trop"}
)
# Emoji whose names VADER reads as neutral, read as the word a care agent would.
CARE_EMOJI = {
    "😡": "angry",
    "😠": "angry",
    "🤬": "furious",
    "😤": "frustrated",
    "😒": "annoyed",
    "😑": "annoyed",
    "🤦": "ugh",
    "👎": "bad",
    "💩": "crap",
    "🖕": "hate",
    "🤡": "ridiculous",
    "🐌": "slow",
    "👍": "good",
    "🙌": "great",
    "👏": "good",
    "❤": "love",
    "💯": "great",
    "⭐": "good",
    "🔥": "flames",  # hype as often as disaster: neutral
}

_PHRASES: tuple[tuple[str, float, str], ...] = (
    # English: valences next to the lexicon ("broken" -2.1, "annoying" -1.7)
    (r"\b(?:not|\w+n[’']t|no longer|stopped)\s+(?:be\s+)?work(?:ing|s)?\b", -2.0, "not working"),
    (
        r"\b(?:not|\w+n[’']t)\s+"
        r"(?:load|loading|open|opening|connect|connecting|sync|syncing|respond|responding)\b",
        -1.8,
        "won't load",
    ),
    (
        r"\b(?:can[’']?t|cannot|can not|unable to|couldn[’']?t)\s+"
        r"(?:log\s*in|login|sign\s*in|signin|access|connect|pay|check\s*out|checkout|order)\b",
        -1.8,
        "can't log in",
    ),
    (r"\bstill\s+(?:waiting|no|not|nothing|haven[’']?t|hasn[’']?t|broken|down)\b", -1.5, "still waiting"),
    (
        r"\b(?:never|hasn[’']?t|didn[’']?t|not)\s+"
        r"(?:arrived?|arrives|received|came|showed up|been delivered)\b",
        -1.8,
        "never arrived",
    ),
    (
        r"\b(?:no|zero|without)\s+(?:reply|replies|response|responses|answer|answers|signal|service|"
        r"internet|wifi|connection|power)\b",
        -1.5,
        "no response",
    ),
    (
        r"\b(?:nobody|no one|noone)\s+(?:\w+\s+)?(?:answers|answering|responds|responding|replies|replying|"
        r"picks up|helps|cares)\b",
        -1.8,
        "nobody answers",
    ),
    (r"\bon hold\b", -1.2, "on hold"),
    (
        r"\b(?:charged|billed)\s+(?:me\s+)?(?:twice|two times|double|again|for a plan)\b"
        r"|\bdouble[\s-]charged\b",
        -2.0,
        "charged twice",
    ),
    (r"\bhung up on\b", -2.0, "hung up on"),
    (r"\blogged (?:me )?out\b", -1.0, "logged out"),
    (r"\bkeeps?\s+(?:crashing|freezing|dropping|failing|disconnecting|restarting)\b", -1.0, "keeps failing"),
    (r"\bthanks?(?: you)? in advance\b", -1.5, "thanks in advance (politeness)"),
    (
        r"\b(?:would|i[’']?d|we[’']?d)\s+(?:really\s+|so\s+)?(?:love|like|appreciate)\s+"
        r"(?:an?|the|to|it if|if|some|more|for)\b"
        r"|\bwould be (?:so |really )?(?:nice|great|awesome|cool|good|helpful|lovely) (?:if|to)\b",
        -2.5,
        "would love ... (a wish, not praise)",
    ),
    (
        r"\b(?:works?|working|running|back)\s+again\b|\bback\s+(?:up|online)\b|\bup and running\b",
        1.5,
        "working again",
    ),
    # verdicts VADER turns the wrong way round ("couldn't be worse" reads as praise of "worse")
    (r"\b(?:could|can)(?:n[’']?t| ?not)\s+(?:be|get)\s+(?:any\s+)?worse\b", -2.5, "couldn't be worse"),
    (
        r"\b(?:could|can)(?:n[’']?t| ?not)\s+(?:be|get)\s+(?:any\s+)?(?:better|happier)\b",
        2.5,
        "couldn't be better",
    ),
    (r"\b(?:is|was|are|were)?\s*not\s+worth\b|\b\w+n[’']t\s+worth\b", -1.8, "not worth"),
    (r"\bworth\s+(?:it|every|the money|the price)\b", 1.5, "worth it"),
    (
        r"\bused\s+to\s+be\s+(?:so\s+|really\s+)?(?:good|great|decent|reliable|amazing|the best)\b",
        -3.5,  # takes back the praise word it holds ("great" 3.1) and then some
        "used to be good",
    ),
    (r"\bnever\s+again\b", -2.0, "never again"),
    (
        r"\bnever\s+had\s+(?:a|an|one|any)\s+(?:single\s+)?(?:problem|issue|complaint|reason to)\b",
        1.8,
        "never had a problem",
    ),
    (
        r"\b(?:fixed|solved|resolved|sorted|resolvió|solucionó|solucionaron|resolveu|réglé|résolu|gelöst|"
        r"behoben)\s+"
        r"(?:\w+\s+){0,2}(?:problems?|issues?|problemas?|problèmes?|probleme?)\b",
        2.0,  # the fix outweighs the problem word it names
        "fixed my problem",
    ),
    (
        r"\brock[\s-]solid\b|\babove and beyond\b|\bcredit where (?:it[’']?s |credit is )?due\b|\bcredit to\b"
        r"|\bspot on\b|\bgame[\s-]?changer\b|\bhats off\b|\bchef[’']?s kiss\b|\b(?:life|time)[\s-]?saver\b"
        r"|\bsaved (?:me|us|my)\b",
        2.0,
        "rock solid (praise idiom)",
    ),
    (
        r"\b(?:not|never|isn[’']t|wasn[’']t)\s+(?:being\s+)?(?:recogni[sz]ed|detected)\b"
        r"|\bpush(?:ed|es|ing)?\s+(?:the\s+)?(?:date|delivery|appointment)\s+back\b",
        -1.5,
        "not recognised",
    ),
    (r"\bse\s+(?:cierra|cuelga|bloquea|traba)\b|\bva\s+e\s+viene\b", -2.0, "se cierra (es, it)"),
    (r"\b(?:seriously|really|are you (?:kidding|serious|joking)(?: me)?)\s*\?+", -1.5, "seriously?"),
    (r"\b(?:got|get|was|were|been)\s+hit\s+with\b", -1.8, "hit with (a fee)"),
    (
        r"\b(?:without|sin|sem|sans|ohne)\s+(?:any\s+)?(?:warning|notice|telling (?:us|me)|avisar|aviso|"
        r"prévenir|préavis|vorwarnung)\b",
        -1.5,
        "without warning",
    ),
    (r"\b(?:nessuna|nenhuma|geen)\s+(?:risposta|resposta|antwoord|reazione)\b", -1.5, "nessuna risposta"),
    (r"\bwhat[’']?s\s+the\s+point\b|\bwhat\s+is\s+the\s+point\b", -1.5, "what's the point"),
    (
        r"\b(?:hard|difficult|impossible)\s+to\s+"
        r"(?:use|read|find|navigate|understand|reach|cancel|contact|get hold of)\b",
        -1.5,
        "hard to use",
    ),
    (r"\b(?:can[’']?t|cannot|can not)\s+(?:complain|fault)\b|\bno\s+complaints\b", 1.8, "can't complain"),
    (r"\b(?:10|ten)\s*/\s*10\b|\b(?:5|five)\s+stars\b", 2.0, "10/10"),
    (
        r"\b(?:step|steps)\s+backwards?\b|\bthinking\s+(?:about|of)\s+(?:leaving|switching|cancell?ing)\b",
        -1.8,
        "thinking about leaving",
    ),
    # German
    (
        r"\b(?:funktioniert|geht|läuft|klappt)\s+(?:\w+\s+)?(?:nicht|nich|gar nicht)\b",
        -2.0,
        "funktioniert nicht",
    ),
    (
        r"\bkein(?:e|en)?\s+(?:internet|netz|empfang|verbindung|antwort|rückmeldung|strom)\b",
        -1.5,
        "kein internet",
    ),
    (r"\bwarte(?:n)?\s+(?:\w+\s+)?seit\b", -1.2, "warte seit"),
    (r"\bdoppelt\s+abgebucht\b", -2.0, "doppelt abgebucht"),
    (r"\bschon wieder\b", -0.8, "schon wieder"),
    # Spanish
    (r"\bno\s+(?:funciona|va|carga|sirve|anda|responde|llega|llegó|contestan)\b", -2.0, "no funciona"),
    (r"\bsin\s+(?:servicio|internet|señal|luz|respuesta|conexión)\b", -1.8, "sin servicio"),
    (
        r"\b(?:cobraron|cobrado|cobran)\s+(?:\w+\s+){0,3}(?:dos veces|doble|de más)\b",
        -2.0,
        "cobraron dos veces",
    ),
    (r"\b(?:sigo|seguimos)\s+esperando\b", -1.5, "sigo esperando"),
    (r"\botra vez\b", -0.8, "otra vez"),
    # French
    (r"\b(?:marche|fonctionne|charge|répond)\s+(?:plus|pas)\b", -2.0, "ne marche pas"),
    (r"\bimpossible de\b", -1.5, "impossible de"),
    (r"\b(?:toujours|encore)\s+(?:rien|pas|en attente)\b", -1.5, "toujours rien"),
    (r"\bprélevée?s?\s+(?:deux fois|en double)\b", -2.0, "prélevé deux fois"),
    (r"\bne\s+répond\s+jamais\b", -1.5, "ne répond jamais"),
    # Portuguese, Italian, Dutch
    (r"\bnão\s+(?:funciona|carrega|responde|chegou)\b", -2.0, "não funciona"),
    (r"\bnon\s+(?:funziona|va|carica|risponde|arriva)\b", -2.0, "non funziona"),
    (
        r"\b(?:werkt|doet)\s+(?:het\s+)?niet\b|\bgeen\s+(?:internet|verbinding|bereik|antwoord)\b",
        -2.0,
        "werkt niet",
    ),
)
_STRIP = re.compile(r"https?://\S+|www\.\S+|(?<!\w)@[\w.-]+")
# Words in quotes are someone else's ('next day delivery', "we value your feedback"): they do not
# set the post's tone. Up to 60 characters between quotes that are not apostrophes.
_QUOTED = re.compile(r"(?<!\w)(['‘\"“])(?=\S)([^'’\"”\n]{1,60}?)(?<=\S)['’\"”](?!\w)")
_CLAUSE_END = frozenset(",.;:!?")

# ------------------------------------------------------------------ sarcasm cues

_POSITIVE_INTERJECTION = (
    r"(?:great|wonderful|fantastic|brilliant|awesome|perfect|lovely|amazing|nice|super|terrific|"
    r"excellent|splendid|marvell?ous|fabulous|cool|sweet|yay|wow|bravo|good job|nice one|well done)"
)
_TROUBLE = (
    r"\b(?:outages?|down|crash\w*|broken|errors?|bugs?|fail\w*|glitch\w*|charged|billed|wait(?:ing|ed)|"
    r"on hold|delay\w*|late|lost|missing|cancel+ed|disconnect\w*|dropp\w*|ignored|offline|unavailable|"
    r"logged (?:me )?out|price (?:hike|rise|increase)s?|hidden fees?|bricked|"
    r"no (?:reply|response|signal|service|internet))\b|🙄"
)
_RESOLVED = (
    r"\b(?:fixed|resolved|sorted|solved|restored|refunded|replaced|(?:works?|working|running|back)\s+again|"
    r"back (?:up|online)|up and running|(?:is|are) over)\b"
)
# (pattern, name, where trouble must be for the cue to count: None, "after" the cue, "anywhere")
_SARCASM: tuple[tuple[str, str, str | None], ...] = (
    (r"(?:^|\s)/s\b|#sarcasm\b|/sarcasm\b", "/s", None),
    (r"\b(?:yeah|yea|ya),?\s+right\b", "yeah right", None),
    (r"\bthanks?(?:\s+you)?(?:\s+(?:a lot|so much))?\s+for\s+nothing\b", "thanks for nothing", None),
    (r"🙄|\beye[\s-]?roll\w*\b|\brolls? (?:my )?eyes\b", "eye-roll", None),
    (r"(?:\.\.\.|…)\s*not\b[!.]*\s*$", "... not", None),
    (
        r"\b(?:love|loving|lovin|enjoy|enjoying|adore|gotta love|nothing like)\s+(?:it\s+when\s+)?"
        r"(?:waiting|being\s+(?:on hold|charged|billed|ignored|disconnected|logged out)|"
        r"getting\s+(?:charged|billed|ignored|disconnected|logged out)|paying\s+(?:more|extra|twice)|"
        r"spending\s+(?:hours|days|\d+)|(?:the|another|these|all the)\s+"
        r"(?:outages?|downtime|crash(?:es)?|delays?|errors?|bugs?|price hikes?))\b",
        "love waiting",
        None,
    ),
    (r"\bso\s+(?:glad|happy)\s+i\s+(?:pay|paid)\b", "so glad I pay", None),
    (r"\bslow[\s-]clap\b", "slow clap", None),
    (r"\boh,?\s+" + _POSITIVE_INTERJECTION + r"\b.*\bagain\b", "oh wonderful ... again", "anywhere"),
    (
        r"(?:^|[.!?]\s+|\boh,?\s+|\bjust\s+)" + _POSITIVE_INTERJECTION + r"\s*(?:[,.!…]+|\s-+)\s*\S",
        "great, <trouble>",
        "after",
    ),
    (r"\b(?:just|exactly)\s+what\s+i\s+(?:needed|wanted)\b", "just what I needed", "anywhere"),
    (r"\bthanks?(?:\s+you)?\s+(?:a lot|so much)\b", "thanks a lot", "anywhere"),
    (
        r"\bwhat a (?:surprise|shock)\b|\bcolou?r me (?:surprised|shocked)\b",
        "what a surprise",
        "anywhere",
    ),
    (r"🙃", "upside-down face", "anywhere"),
    # a closing one-word verdict after the trouble: "... then cancelled. Fantastic."
    (
        r"[.!?]\s+" + _POSITIVE_INTERJECTION + r"(?:\s+(?:timing|job|service|work|stuff|news))?[.!]*\s*$",
        "closing 'Fantastic.'",
        "anywhere",
    ),
    (r"\b(cool|great|nice|perfect|fine)[,!.]?\s+\1[,!.]?\s+\1\b", "cool cool cool", "anywhere"),
)


_B = "\\b"  # every care phrase starts with it (a unit test checks)


@dataclass(frozen=True, slots=True)
class _Rules:
    phrases: re.Pattern[str]  # every care phrase as one alternation: group p<i> is _PHRASES[i]
    any_sarcasm: re.Pattern[str]  # one pass to skip the cue-by-cue search in most posts
    sarcasm: tuple[tuple[re.Pattern[str], str, str | None], ...]
    trouble: re.Pattern[str]
    resolved: re.Pattern[str]


@cache
def _rules() -> _Rules:
    """The care phrases and sarcasm cues, compiled on first use (not on import: cold start)."""
    return _Rules(
        # every phrase starts at a word boundary: one \b in front lets the engine skip mid-word
        # positions, and matching lower-cased text without IGNORECASE is twice as fast again
        phrases=re.compile(
            r"\b(?:"
            + "|".join(f"(?P<p{i}>{p.removeprefix(_B)})" for i, (p, _, _) in enumerate(_PHRASES))
            + ")"
        ),
        any_sarcasm=re.compile("|".join(f"(?:{p})" for p, _, _ in _SARCASM)),
        sarcasm=tuple((re.compile(p), name, where) for p, name, where in _SARCASM),
        trouble=re.compile(_TROUBLE),
        resolved=re.compile(_RESOLVED),
    )


def sarcasm_cues(text: str) -> list[str]:
    """The sarcasm cues in a post; the ambiguous ones count only beside trouble, and never beside a fix."""
    found: list[str] = []
    rules = _rules()
    text = text.lower()
    if not rules.any_sarcasm.search(text):
        return found
    for pattern, name, trouble in rules.sarcasm:
        match = pattern.search(text)
        if not match:
            continue
        if trouble is not None:
            # "great, another outage" is sarcasm; "great, it's back up" and "great, thanks" are not
            scope = text[match.end() - 1 :] if trouble == "after" else text
            if not rules.trouble.search(scope) or rules.resolved.search(text):
                continue
        found.append(name)
    return found


# ------------------------------------------------------------------ VADER


class VaderTone:
    """VADER plus the care lexicon, phrases, emoji and sarcasm cues; built on first use."""

    name = "vader"

    def __init__(self) -> None:
        self._analyzer: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._analyzer is not None

    def _get(self) -> Any:
        if self._analyzer is None:
            with self._lock:
                if self._analyzer is None:
                    self._analyzer = _build_analyzer()
        return self._analyzer

    def score(self, text: str, language: str | None = None) -> Tone:
        text = _STRIP.sub(" ", text[:MAX_CHARS])
        reasons: list[str] = []
        if "'" in text or '"' in text or "‘" in text or "“" in text:
            quoted = [m.group(2) for m in _QUOTED.finditer(text)]
            if quoted:
                text = _QUOTED.sub(" ", text)
                reasons.append("quoted words left out: " + ", ".join(repr(q) for q in quoted[:3]))
        extra: list[float] = []
        counts: dict[int, int] = {}
        for match in _rules().phrases.finditer(text.lower()):
            index = int(str(match.lastgroup)[1:])
            counts[index] = counts.get(index, 0) + 1
        for index in sorted(counts):
            _, valence, label = _PHRASES[index]
            extra.extend([valence] * min(counts[index], 2))
            reasons.append(f"phrase '{label}' ({valence:+.1f})")
        for emoji, word in CARE_EMOJI.items():
            if emoji in text:
                reasons.append(f"emoji {emoji} read as '{word}'")
        compound = self._get().compound(text, extra)
        reasons.insert(0, f"vader {compound:+.3f}")
        if compound == 0.0 and language and language not in LEXICON_LANGUAGES:
            reasons.append(f"no tone words known for language {language!r}: neutral means unread")
        cues = sarcasm_cues(text)
        if cues:
            reasons.append("sarcasm: " + ", ".join(cues))
            if compound > NEGATIVE_AT:
                compound = -max(abs(compound), SARCASM_FLOOR)
                reasons.append(f"sarcasm turns the score to {compound:+.3f}")
        return Tone(label_for(compound), round(compound, 4), tuple(reasons))

    def score_many(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[Tone]:
        langs = list(languages) if languages is not None else [None] * len(texts)
        return [self.score(text, lang) for text, lang in zip(texts, langs, strict=True)]


def _build_analyzer() -> Any:
    from vaderSentiment import vaderSentiment as vader

    class CareAnalyzer(vader.SentimentIntensityAnalyzer):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.lexicon.update(CARE_LEXICON)
            for word in CARE_NEUTRAL:
                self.lexicon.pop(word, None)
            for emoji, word in CARE_EMOJI.items():
                self.emojis[emoji] = word
            self._local = threading.local()  # clause breaks of the text being scored, per thread

        def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:
            # a negator does not reach past a comma or a full stop: "ne répond jamais, c'est nul"
            if any(j in self._local.breaks for j in range(i - (start_i + 1), i)):
                return valence
            valence = super()._negation_check(valence, words, start_i, i)
            if words[i - (start_i + 1)].lower() in EXTRA_NEGATORS:
                valence *= vader.N_SCALAR
            return valence

        def compound(self, text: str, extra: list[float]) -> float:
            """VADER's polarity_scores()['compound'], with the care phrases' valences added."""
            pieces = []
            prev_space = True
            for char in text:
                description = self.emojis.get(char)
                if description is not None:
                    if not prev_space:
                        pieces.append(" ")
                    pieces.append(description)
                    prev_space = False
                else:
                    pieces.append(char)
                    prev_space = char == " "
            text = "".join(pieces).strip()
            sentitext = vader.SentiText(text)
            words = sentitext.words_and_emoticons
            self._local.breaks = {j for j, raw in enumerate(text.split()) if raw[-1] in _CLAUSE_END}
            for j, word in enumerate(words[:-1]):
                lower = word.lower()
                if lower in CARE_BOOSTERS and (lower != "super" or words[j + 1].lower() in self.lexicon):
                    words[j] = "VERY" if word.isupper() else "very"
            sentiments: list[float] = []
            for i, item in enumerate(words):
                lower = item.lower()
                if lower in vader.BOOSTER_DICT or (
                    lower == "kind" and i < len(words) - 1 and words[i + 1].lower() == "of"
                ):
                    sentiments.append(0)
                    continue
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
            sentiments = self._but_check(words, sentiments)
            sentiments.extend(extra)
            return float(self.score_valence(sentiments, text)["compound"])

    return CareAnalyzer()


_DEFAULT = VaderTone()


def default_analyzer() -> VaderTone:
    """The container's one VADER analyzer (its lexicon loads on the first score)."""
    return _DEFAULT


def score(text: str, language: str | None = None) -> Tone:
    """Tone of one post with the default offline analyzer (VADER and the care rules)."""
    return _DEFAULT.score(text, language)


# ------------------------------------------------------------------ Amazon Comprehend

COMPREHEND_LANGUAGES = frozenset({"en", "es", "fr", "de", "it", "pt", "ar", "hi", "ja", "ko", "zh"})
COMPREHEND_BATCH = 25  # BatchDetectSentiment's limit
COMPREHEND_MAX_BYTES = 5000  # per document, UTF-8


class ComprehendTone:
    """Amazon Comprehend sentiment behind the ToneAnalyzer interface.

    POSITIVE / NEGATIVE / NEUTRAL map to the labels; MIXED is negative when its Negative score is at
    least its Positive one, else neutral (never positive: a mixed post holds a complaint). The score
    is Positive - Negative. A language Comprehend does not read, and a failed call, fall back to
    VADER; the reasons say so.
    """

    name = "comprehend"

    def __init__(self, client: Any, fallback: ToneAnalyzer | None = None) -> None:
        self.client = client
        self.fallback = fallback or _DEFAULT

    def score(self, text: str, language: str | None = None) -> Tone:
        code = (language or "en").lower()
        if code not in COMPREHEND_LANGUAGES:
            return self._fallback(text, language, f"comprehend does not read {code!r}")
        try:
            response = self.client.detect_sentiment(Text=_clip_utf8(text), LanguageCode=code)
        except Exception as exc:  # a throttled or failed call must not lose the mention
            return self._fallback(text, language, f"comprehend failed ({type(exc).__name__})")
        return _from_comprehend(response)

    def score_many(self, texts: Sequence[str], languages: Sequence[str | None] | None = None) -> list[Tone]:
        langs = list(languages) if languages is not None else [None] * len(texts)
        results: list[Tone | None] = [None] * len(texts)
        by_code: dict[str, list[int]] = {}
        for index, lang in enumerate(langs):
            code = (lang or "en").lower()
            if code in COMPREHEND_LANGUAGES:
                by_code.setdefault(code, []).append(index)
            else:
                results[index] = self._fallback(texts[index], lang, f"comprehend does not read {code!r}")
        for code, indexes in by_code.items():
            for start in range(0, len(indexes), COMPREHEND_BATCH):
                chunk = indexes[start : start + COMPREHEND_BATCH]
                try:
                    response = self.client.batch_detect_sentiment(
                        TextList=[_clip_utf8(texts[i]) for i in chunk], LanguageCode=code
                    )
                except Exception as exc:
                    for i in chunk:
                        results[i] = self._fallback(
                            texts[i], langs[i], f"comprehend failed ({type(exc).__name__})"
                        )
                    continue
                for item in response.get("ResultList", []):
                    results[chunk[item["Index"]]] = _from_comprehend(item)
                for error in response.get("ErrorList", []):
                    i = chunk[error["Index"]]
                    why = f"comprehend error {error.get('ErrorCode')}"
                    results[i] = self._fallback(texts[i], langs[i], why)
        return [
            tone if tone is not None else self._fallback(texts[i], langs[i], "comprehend returned no result")
            for i, tone in enumerate(results)
        ]

    def _fallback(self, text: str, language: str | None, why: str) -> Tone:
        tone = self.fallback.score(text, language)
        return Tone(tone.label, tone.score, (f"{why}; {self.fallback.name} used", *tone.reasons))


def _from_comprehend(result: dict[str, Any]) -> Tone:
    sentiment = str(result.get("Sentiment", "NEUTRAL")).upper()
    scores = result.get("SentimentScore") or {}
    positive = float(scores.get("Positive", 0.0))
    negative = float(scores.get("Negative", 0.0))
    value = round(positive - negative, 4)
    if sentiment == "POSITIVE":
        label = "positive"
    elif sentiment == "NEGATIVE":
        label = "negative"
    elif sentiment == "MIXED":
        label = "negative" if negative >= positive else "neutral"
    else:
        label = "neutral"
    return Tone(label, value, (f"comprehend {sentiment} (positive {positive:.2f}, negative {negative:.2f})",))


def _clip_utf8(text: str, limit: int = COMPREHEND_MAX_BYTES) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore")


def tone_analyzer(kind: str = "vader", *, comprehend_client: Any = None) -> ToneAnalyzer:
    """The analyzer a brand's `tone` setting names; comprehend needs the caller's boto3 client."""
    if kind == "vader":
        return _DEFAULT
    if kind == "comprehend":
        if comprehend_client is None:
            raise ValueError("tone 'comprehend' needs a Comprehend client")
        return ComprehendTone(comprehend_client)
    raise ValueError(f"unknown tone analyzer {kind!r} (known: {', '.join(TONE_KINDS)})")
