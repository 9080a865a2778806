"""Which language a post is in: offline, no model, a few microseconds a post.

Two steps, cheapest first:

1. **Script.** Letters of a non-Latin script decide on their own: Arabic (ar; fa and ur by their
   own letters), Hebrew (he), Cyrillic (ru; uk, be, sr, mk by their own letters), Greek (el),
   Japanese kana (ja), Hangul (ko), Han without kana (zh), Thai (th), Devanagari (hi). Brand names,
   handles and links are Latin, so a script wins with half as many letters as the Latin ones, and
   CJK characters count 2.5 each (one carries about a word).
2. **Stopwords.** Latin-script posts are scored against the function words of en, de, es, fr, pt,
   it, nl and sv. A word shared by several languages ("de", "en", "a") counts 1/n for each, and a
   few letters only one language uses (ß, ñ, ¿, ã, å) add a point. The best language needs
   2 points and 1.5 times the runner-up; otherwise the answer is None: short posts ("acme down
   again 😡") are left undecided rather than guessed.

A language the source itself declares (X `lang`, Mastodon `language`, Bluesky `langs`) is trusted:
the caller passes it as `declared`, and detection runs only when there is none.
"""

from __future__ import annotations

import re
from bisect import bisect_right

# A declared tag that names no language (X and BCP 47 special codes).
_NOT_A_LANGUAGE = frozenset({"und", "zxx", "mul", "mis", "art", "qme", "qht", "qam", "qct", "qst"})
_DECLARED = re.compile(r"^([a-z]{2,3})(?:[-_].*)?$")
_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#$][\w.-]+", re.UNICODE)
_WORDS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)

MIN_POINTS = 2.0
MIN_RATIO = 1.5

# (first code point, last code point, script); sorted by start for bisect.
_RANGES = sorted(
    [
        (0x0370, 0x03FF, "greek"),
        (0x1F00, 0x1FFF, "greek"),
        (0x0400, 0x052F, "cyrillic"),
        (0x0590, 0x05FF, "hebrew"),
        (0xFB1D, 0xFB4F, "hebrew"),
        (0x0600, 0x06FF, "arabic"),
        (0x0750, 0x077F, "arabic"),
        (0x08A0, 0x08FF, "arabic"),
        (0xFB50, 0xFDFF, "arabic"),
        (0xFE70, 0xFEFF, "arabic"),
        (0x0900, 0x097F, "devanagari"),
        (0x0E00, 0x0E7F, "thai"),
        (0x1100, 0x11FF, "hangul"),
        (0x3130, 0x318F, "hangul"),
        (0xAC00, 0xD7AF, "hangul"),
        (0x3040, 0x309F, "kana"),
        (0x30A0, 0x30FF, "kana"),
        (0x31F0, 0x31FF, "kana"),
        (0xFF66, 0xFF9F, "kana"),
        (0x3400, 0x4DBF, "han"),
        (0x4E00, 0x9FFF, "han"),
        (0xF900, 0xFAFF, "han"),
    ]
)
_STARTS = [r[0] for r in _RANGES]
_SCRIPT_LANGUAGE = {
    "greek": "el",
    "hebrew": "he",
    "devanagari": "hi",
    "thai": "th",
    "hangul": "ko",
}
_DENSE = {"han", "kana", "hangul"}  # one character carries about a word
_DENSE_WEIGHT = 2.5
_SCRIPT_SHARE = 0.5  # a script wins with half as many (weighted) letters as the Latin ones
_PERSIAN = set("پچژگکی")
_URDU = set("ٹڈڑںےھ")
_UKRAINIAN = set("іїєґ")
_BELARUSIAN = set("ў")
_SERBIAN = set("ђћџљњј")
_MACEDONIAN = set("ѓќѕ")

_STOPWORDS = {
    "en": """the and is are was were to of in it that this for with on my you your have has not but be
        i me just at what so they can't don't it's i'm from will been get got again why how no all an
        or if about there would do does did any anyone still after""",
    "de": """der die das und ist nicht ich mit auf ein eine einen zu von für den dem des sie es wir ihr
        mein meine kein keine auch noch schon wieder seit bei wie was warum wann aber oder sind hat
        habe wird wurde doch mal jetzt heute immer nur sehr echt bitte danke ihr euch""",
    "es": """el la los las de del que y en un una es no por con para mi me se lo al su más pero ya muy
        como cómo qué está están son desde hace hay otra vez sin todo nada porque también cuando este
        esta gracias tengo puedo""",
    "fr": """le la les de des du et est une un pas ne je vous nous il elle que qui pour dans sur avec
        mon ma mes ce cette c'est au aux plus mais ou très tout rien depuis encore merci j'ai n'est
        chez quand pourquoi comment sont impossible""",
    "pt": """o a os as de do da dos das que e em um uma não é para com por meu minha no na nos se mais
        mas muito já está desde foi tem isso esse essa você ao obrigado obrigada ontem hoje nada
        também""",
    "it": """il lo la gli le di del della che e è un una non per con in mi ho ha sono ma più anche come
        perché quando questo questa da dal al alla nel già ancora sempre grazie niente molto oggi
        ieri""",
    "nl": """de het een en is niet ik van op te dat die in met voor zijn maar ook nog al weer mijn je
        jullie er wat hoe waarom wanneer bij heb heeft geen dan nu vandaag gisteren bedankt echt wel
        naar om""",
    "sv": """och att det är en ett som på med för av till inte jag har om den de men var kan så vi ni
        min mitt mina sedan igen varför hur när tack ingen inget också nu idag igår fortfarande bara
        mycket""",
}
_LETTER_HINTS = {
    "ß": (("de", 1.0),),
    "ñ": (("es", 1.0),),
    "¿": (("es", 1.0),),
    "¡": (("es", 1.0),),
    "ã": (("pt", 1.0),),
    "õ": (("pt", 1.0),),
    "å": (("sv", 1.0),),
    "œ": (("fr", 1.0),),
    "ç": (("fr", 0.5), ("pt", 0.5)),
    "ê": (("fr", 0.5), ("pt", 0.5)),
    "è": (("fr", 0.5), ("it", 0.5)),
    "à": (("fr", 0.5), ("it", 0.5)),
    "ù": (("fr", 0.5), ("it", 0.5)),
    "ò": (("it", 1.0),),
    "ì": (("it", 1.0),),
    "ü": (("de", 0.5),),
    "ä": (("de", 0.5), ("sv", 0.5)),
    "ö": (("de", 0.5), ("sv", 0.5)),
}


def _weights() -> dict[str, tuple[tuple[str, float], ...]]:
    holders: dict[str, list[str]] = {}
    for code, words in _STOPWORDS.items():
        for word in words.split():
            holders.setdefault(word, []).append(code)
    return {word: tuple((code, 1.0 / len(codes)) for code in codes) for word, codes in holders.items()}


_WORD_WEIGHTS = _weights()
LATIN_LANGUAGES = tuple(_STOPWORDS)
FUNCTION_WORDS = frozenset(_WORD_WEIGHTS)  # every stopword of every Latin-script language above


def normalise_declared(value: str | None) -> str | None:
    """A source's language tag as a lower-case code ('pt-BR' -> 'pt'); None for 'und' and the like."""
    if not value:
        return None
    match = _DECLARED.match(value.strip().lower())
    if not match or match.group(1) in _NOT_A_LANGUAGE:
        return None
    return match.group(1)


def detect_language(text: str, declared: str | None = None) -> str | None:
    """ISO 639-1 code of the post's language: the source's own if given, else detected; None if unsure."""
    trusted = normalise_declared(declared)
    if trusted:
        return trusted
    if not text:
        return None
    text = _NOISE.sub(" ", text)
    if not text.isascii():
        by_script = _by_script(text)
        if by_script:
            return by_script
    return _by_stopwords(text)


def _by_script(text: str) -> str | None:
    counts: dict[str, int] = {}
    latin = 0
    for char in text:
        code = ord(char)
        if code < 0x0370:
            if char.isalpha():
                latin += 1
            continue
        index = bisect_right(_STARTS, code) - 1
        if index >= 0 and code <= _RANGES[index][1]:
            script = _RANGES[index][2]
            counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    cjk = counts.pop("han", 0) + counts.get("kana", 0)
    kana = counts.pop("kana", 0)
    if cjk:
        counts["cjk"] = cjk
    script, letters = max(counts.items(), key=lambda item: item[1])
    weight = _DENSE_WEIGHT if script in ("cjk", "hangul") else 1.0
    if letters * weight < 2 or letters * weight < latin * _SCRIPT_SHARE:
        return None
    if script == "cjk":
        return "ja" if kana >= 2 or kana * 10 >= cjk else "zh"
    if script == "arabic":
        letters_in = set(text)
        if letters_in & _URDU:
            return "ur"
        return "fa" if letters_in & _PERSIAN else "ar"
    if script == "cyrillic":
        lower = set(text.lower())
        for marks, code in (
            (_BELARUSIAN, "be"),  # before uk: Belarusian shares the Ukrainian i
            (_UKRAINIAN, "uk"),
            (_MACEDONIAN, "mk"),
            (_SERBIAN, "sr"),
        ):
            if lower & marks:
                return code
        return "ru"
    return _SCRIPT_LANGUAGE.get(script)


def language_scores(text: str) -> dict[str, float]:
    """Stopword points per Latin-script language (the evidence `detect_language` decides on)."""
    points = dict.fromkeys(LATIN_LANGUAGES, 0.0)
    text = text.lower()
    for word in _WORDS.findall(text):
        for code, weight in _WORD_WEIGHTS.get(word.replace("’", "'"), ()):
            points[code] += weight
    if not text.isascii():
        for char, hints in _LETTER_HINTS.items():
            if char in text:
                for code, weight in hints:
                    points[code] += weight
    return points


def _by_stopwords(text: str) -> str | None:
    points = language_scores(text)
    ranked = sorted(points.items(), key=lambda item: item[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_POINTS or top < second * MIN_RATIO:
        return None
    return best
