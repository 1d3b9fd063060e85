"""Prompts and answers assembled from the stored fragments (:mod:`.texts`).

A :class:`Composer` is built once per process (the fragments parsed, the answer sentences filled
in advance) and is read-only afterwards: every draw comes from the generator's ``random.Random``
passed in, so the same seed gives the same texts.

* A **prompt** is a prefix, a template of the conversation's category filled with values drawn for
  that conversation (entities, numbers, sometimes pasted code, text or CSV), an optional context
  sentence and a suffix — so prompts are practically never repeated.
* An **answer** grows block by block (paragraphs, bullet and numbered lists, headings, fenced code,
  tables) until it reaches the length drawn for it, between an opener (often an intro sentence
  filled with the prompt's own values) and a closer. An answer cut by ``max_tokens`` is built past
  its cap and cut at a word boundary, mid-sentence.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import cache

from conv_pipeline_demo.sample.texts import CATEGORIES, texts

# Numeric placeholders: name -> (low, high, thousands separator).
_NUMBERS = {
    "n": (2, 999, False),
    "n2": (10, 5000, True),
    "small": (2, 12, False),
    "small2": (3, 30, False),
    "big": (1000, 999_999, True),
    "pct": (1, 95, False),
    "year": (1950, 2024, False),
    "age": (19, 64, False),
    "hh": (6, 22, False),
    "a": (2, 60, False),
    "b": (2, 60, False),
    "c": (2, 60, False),
    "k": (2, 9, False),
}
# How an answer of each category is built: block kind -> weight.
_BLOCKS = {
    "coding": {"para": 35, "bullets": 14, "numbered": 12, "heading": 13, "code": 26},
    "data_analysis": {
        "para": 35,
        "bullets": 18,
        "numbered": 10,
        "heading": 14,
        "code": 13,
        "table": 10,
    },
    "math": {"para": 40, "numbered": 30, "heading": 14, "code": 6, "bullets": 10},
    "writing": {"para": 62, "bullets": 14, "heading": 18, "numbered": 6},
    "knowledge": {"para": 52, "bullets": 20, "heading": 18, "numbered": 10},
    "advice": {"para": 36, "bullets": 26, "numbered": 20, "heading": 18},
    "chitchat": {"para": 80, "bullets": 20},
    "translation": {"para": 100},
}
#: Non-English answers: block kinds without and with code (the ``coding`` category).
_LANG_BLOCKS = (
    {"para": 60, "bullets": 22, "heading": 18},
    {"para": 45, "bullets": 15, "heading": 14, "code": 26},
)
#: Below this many possible fillings a prompt template gets a context sentence with numbers.
_RICH = 200
# About how many values the computed placeholders take.
_PASTES = {
    "paste_code": 30, "paste_text": 7, "paste_csv": 1e9, "ver": 840, "size": 79, "email": 1e5,
    "phone": 1e6, "target_name": 9, "phrase": 8,
}  # fmt: skip
_POOL_BLOCKS = 900  # blocks drawn in advance per category (a third of that per language)
_CSV_HEADERS = (
    ("date", "region", "orders", "revenue"),
    ("week", "channel", "visitors", "signups", "conversion"),
    ("customer_id", "plan", "months_active", "churned"),
    ("product", "category", "units", "price", "margin"),
    ("ticket_id", "priority", "hours_to_resolve", "csat"),
)
_CSV_WORDS = (
    "north",
    "south",
    "east",
    "west",
    "web",
    "ads",
    "email",
    "pro",
    "basic",
    "team",
    "A",
    "B",
)


class _Fill(dict):
    """The values of one conversation's placeholders, drawn on first use and then kept, so a
    prompt, its answer's intro and the follow-ups speak of the same things."""

    __slots__ = ("rng", "composer", "category")

    def __init__(self, rng: random.Random, composer: Composer, category: str) -> None:
        super().__init__()
        self.rng = rng
        self.composer = composer
        self.category = category

    def __missing__(self, key: str) -> str:
        value = self.composer.draw(self.rng, self.category, key, self)
        self[key] = value
        return value


@dataclass(frozen=True)
class _Lang:
    name: str
    locales: tuple[str, ...]
    phrases: tuple[str, ...]
    topics: tuple[str, ...]
    prompts: tuple[str, ...]
    sentences: tuple[str, ...]
    headings: tuple[str, ...]
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    short: tuple[str, ...]
    prefixes: tuple[str, ...]
    contexts: tuple[str, ...]
    suffixes: tuple[str, ...]
    followups: tuple[str, ...]


_FORMATTER = string.Formatter()


def _slots(text: str) -> set[str]:
    return {name for _, name, _, _ in _FORMATTER.parse(text) if name}


def _one(rng: random.Random, seq):
    return seq[int(rng.random() * len(seq))]


def _cum(weights: dict[str, int]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    total = sum(weights.values())
    acc, cum = 0.0, []
    for w in weights.values():
        acc += w / total
        cum.append(acc)
    return tuple(weights), tuple(cum)


def _pick(rng: random.Random, kinds: tuple[str, ...], cum: tuple[float, ...]) -> str:
    r = rng.random()
    for kind, c in zip(kinds, cum, strict=True):
        if r < c:
            return kind
    return kinds[-1]


class Composer:
    """The fragments, ready to draw from (build it with :func:`composer`)."""

    def __init__(self) -> None:
        t = texts()
        self.common = t.common
        self.cats = t.categories
        self.slots: dict[str, tuple[str, ...]] = {}
        for cat in CATEGORIES:
            for name, values in self.cats[cat].get("slots", {}).items():
                self.slots.setdefault(name, tuple(values))
        self.langs = {
            code: _Lang(
                name=d["name"],
                locales=tuple(d["locales"]),
                phrases=tuple(d["phrases"]),
                topics=tuple(d["topics"]),
                prompts=tuple(d["prompts"]),
                sentences=tuple(d["sentences"]),
                headings=tuple(d["headings"]),
                openers=tuple(d["openers"]),
                closers=tuple(d["closers"]),
                short=tuple(d["short"]),
                prefixes=tuple(d["prefixes"]),
                contexts=tuple(d["contexts"]),
                suffixes=tuple(d["suffixes"]),
                followups=tuple(d["followups"]),
            )
            for code, d in t.i18n["languages"].items()
        }
        self.phrases_en = tuple(t.i18n["phrases_en"])
        self._cardinality: dict[tuple[str, str], float] = {}
        self.rich_contexts = tuple(
            x for x in self.common["contexts"] if any(n in _NUMBERS for n in _slots(x))
        )
        self.snippets = {lang: tuple(s) for lang, s in t.code["snippets"].items()}
        self.code_langs = {k: tuple(v) for k, v in t.code["category_languages"].items()}
        # Answer sentences filled in advance (a few fillings of each template), per category.
        pool_rng = random.Random("sample-sentence-pools")  # a str seed is stable across runs
        self.generic = self._prefill(pool_rng, "knowledge", self.common["generic"])
        self.sentences = {
            cat: self._prefill(pool_rng, cat, self.cats[cat].get("sentences", ())) or self.generic
            for cat in CATEGORIES
        }
        self.hedges = self._prefill(pool_rng, "advice", self.common["hedges"])
        self.en_openers = tuple(o for o in self.common["openers"] if o)
        self.en_closers = tuple(self.common["closers"])
        # Answer blocks (paragraphs, lists, headings, code, tables) built in advance: an answer is
        # an opening and enough of them, which keeps generation fast at bench scale.
        self.en_blocks = {
            cat: self._blocks(
                pool_rng,
                _BLOCKS[cat],
                (self.sentences[cat], self.generic),
                self.cats[cat].get("headings", ()),
                cat,
                _POOL_BLOCKS,
            )
            for cat in CATEGORIES
        }
        self.lang_sentences = lang_sentences = {
            code: self._prefill(pool_rng, "other", lng.sentences)
            for code, lng in self.langs.items()
        }
        self.lang_blocks = {
            code: tuple(
                self._blocks(
                    pool_rng,
                    _LANG_BLOCKS[coding],
                    (lang_sentences[code], lang_sentences[code]),
                    lng.headings,
                    "coding" if coding else "other",
                    _POOL_BLOCKS // 3,
                )
                for coding in (False, True)
            )
            for code, lng in self.langs.items()
        }

    def _prefill(self, rng: random.Random, cat: str, templates) -> tuple[str, ...]:
        out: list[str] = []
        for tpl in templates:
            if "{" not in tpl:
                out.append(tpl)
                continue
            for _ in range(6):
                out.append(tpl.format_map(_Fill(rng, self, cat)))
        return tuple(dict.fromkeys(out))

    # ---- placeholders --------------------------------------------------------------------------

    def fill(self, rng: random.Random, category: str) -> _Fill:
        return _Fill(rng, self, category)

    def draw(self, rng: random.Random, category: str, key: str, fill: _Fill) -> str:
        """A value for placeholder ``key`` (numbers, the category's lists, any category's lists,
        pasted material); a value holding placeholders is filled from ``fill`` too."""
        spec = _NUMBERS.get(key)
        if spec is not None:
            lo, hi, sep = spec
            value = lo + int(rng.random() * (hi - lo + 1))
            return f"{value:,}" if sep else str(value)
        own = self.cats.get(category, {}).get("slots", {}).get(key)
        values = own if own is not None else self.slots.get(key)
        if values is not None:
            text = _one(rng, values)
            return text.format_map(fill) if "{" in text else text
        if key == "paste_code":
            return self.code_block(rng, category)
        if key == "paste_text":
            return _one(rng, self.common["paste_texts"]).format_map(fill)
        if key == "paste_csv":
            return self._csv(rng)
        if key == "email":  # personal data, as users paste it (the privacy layer redacts it)
            c = self.common
            first = (fill["name"] if "name" in fill else _one(rng, self.slots["name"])).lower()
            last = f"{_one(rng, c['surnames'])}{int(rng.random() * 100)}"
            return f"{first}.{last}@{_one(rng, c['mail_domains'])}"
        if key == "phone":
            return f"+1 555 01{int(rng.random() * 100):02d} {int(rng.random() * 10000):04d}"
        if key == "ver":
            return f"{1 + int(rng.random() * 4)}.{int(rng.random() * 21)}.{int(rng.random() * 10)}"
        if key == "size":
            return f"{2 + int(rng.random() * 79)} GB"
        if key == "target_name":
            return self.langs[fill["target_lang"]].name
        if key == "phrase":
            fill["phrase_index"] = str(int(rng.random() * len(self.phrases_en)))
            return self.phrases_en[int(fill["phrase_index"])]
        raise KeyError(f"sample texts: no values for placeholder {{{key}}}")

    def _csv(self, rng: random.Random) -> str:
        header = _one(rng, _CSV_HEADERS)
        rows = [",".join(header)]
        for i in range(4 + int(rng.random() * 36)):
            cells = []
            for col in header:
                if col in ("region", "channel", "plan", "category", "priority", "product"):
                    cells.append(_one(rng, _CSV_WORDS))
                elif col in ("date", "week"):
                    cells.append(f"W{1 + (i % 52):02d}")
                elif col in ("conversion", "margin", "csat"):
                    cells.append(f"{rng.random():.3f}")
                else:
                    cells.append(str(int(rng.random() * 5000)))
            rows.append(",".join(cells))
        return "\n".join(rows)

    def code_block(self, rng: random.Random, category: str) -> str:
        langs = self.code_langs.get(category) or self.code_langs["other"]
        lang = _one(rng, langs)
        return f"```{lang}\n{_one(rng, self.snippets[lang])}\n```"

    # ---- prompts -------------------------------------------------------------------------------

    def prompt(self, rng: random.Random, fill: _Fill, lang: str) -> str:
        """A first user message of ``fill``'s category, in ``lang``."""
        if lang != "en":
            lng = self.langs[lang]
            body = _one(rng, lng.prompts).format_map(fill)
            if fill.category == "coding" and rng.random() < 0.3:
                body += "\n\n" + self.code_block(rng, "coding")
            return self._wrap_lang(rng, fill, lng, body)
        tpl = _one(rng, self.cats[fill.category]["prompts"])
        return self._wrap(rng, fill, tpl.format_map(fill), tpl)

    def _wrap(self, rng: random.Random, fill: _Fill, body: str, tpl: str) -> str:
        """Prefix, body, context, suffix. A template with few possible fillings always gets a
        context sentence with numbers, so prompts stay distinct at bench scale."""
        c = self.common
        prefix = _one(rng, c["prefixes"])
        if prefix.endswith((", ", "so ", "but ", "hey ")) and not body.startswith(("I ", "I'")):
            body = body[:1].lower() + body[1:]
        context = ""
        if self.cardinality(tpl, fill.category) < _RICH:
            context = " " + _one(rng, self.rich_contexts).format_map(fill)
        elif rng.random() < 0.22:
            context = " " + _one(rng, c["contexts"]).format_map(fill)
        return _vary(rng, f"{prefix}{body}{context}{_one(rng, c['suffixes'])}")

    def _wrap_lang(self, rng: random.Random, fill: _Fill, lng: _Lang, body: str) -> str:
        # The languages' templates have few fillings: always a context sentence (with numbers).
        context = " " + _one(rng, lng.contexts).format_map(fill)
        return f"{_one(rng, lng.prefixes)}{body}{context}{_one(rng, lng.suffixes)}"

    def special_prompt(self, rng: random.Random, fill: _Fill, kind: str) -> str:
        """A prompt that gets a refusal (``refusal_prompts``) or a content-filter stop."""
        tpl = _one(rng, self.common[kind])
        return self._wrap(rng, fill, tpl.format_map(fill), tpl)

    def cardinality(self, tpl: str, category: str) -> float:
        """About how many different texts ``tpl`` can become (cached per template)."""
        key = (tpl, category)
        out = self._cardinality.get(key)
        if out is None:
            out = 1.0
            for name in _slots(tpl):
                if name in _NUMBERS:
                    lo, hi, _ = _NUMBERS[name]
                    out *= hi - lo + 1
                elif name in _PASTES:
                    out *= _PASTES[name]
                else:  # a list: as many as its values, times the fillings of its poorest one
                    own = self.cats.get(category, {}).get("slots", {}).get(name)
                    values = own if own is not None else self.slots.get(name, ("",))
                    out *= len(values) * min(self.cardinality(v, category) for v in values)
            self._cardinality[key] = out
        return out

    def followup(self, rng: random.Random, fill: _Fill, lang: str, after_cut: bool) -> str:
        """A later user message: new numbers, the conversation's entities."""
        fresh = _Fill(rng, self, fill.category)
        fresh.update((k, v) for k, v in fill.items() if k not in _NUMBERS)
        if after_cut:
            return _one(rng, self.common["continue_prompts"]).format_map(fresh)
        if lang != "en":
            lng = self.langs[lang]
            fresh["topic"] = _one(rng, lng.topics)
            return self._wrap_lang(rng, fresh, lng, _one(rng, lng.followups).format_map(fresh))
        c = self.common
        opener = _one(rng, c["followup_openers"])
        body = _one(rng, c["followups"]).format_map(fresh)
        if opener.endswith(", "):
            body = body[:1].lower() + body[1:]
        elif opener:
            body = body[:1].upper() + body[1:]
        context = " " + _one(rng, c["contexts"]).format_map(fresh) if rng.random() < 0.3 else ""
        return f"{opener}{body}{context}"

    # ---- answers -------------------------------------------------------------------------------

    def short_answer(self, rng: random.Random, lang: str) -> str:
        pool = self.common["short_answers"] if lang == "en" else self.langs[lang].short
        return _one(rng, pool)

    def answer(
        self, rng: random.Random, fill: _Fill, lang: str, target: int, cap: int | None = None
    ) -> str:
        """An answer of about ``target`` characters in ``lang`` (Markdown, code where the category
        has it); with ``cap``, built past it and cut at a word boundary below ``cap``."""
        cat = fill.category
        if cat == "translation":
            return self._translation(rng, fill, target, cap)
        rnd = rng.random
        if lang == "en":
            parts = self._en_opening(rng, fill)
            blocks = self.en_blocks[cat]
            closers = self.en_closers
        else:
            lng = self.langs[lang]
            parts = [lng.openers[int(rnd() * len(lng.openers))]] if rnd() < 0.7 else []
            blocks = self.lang_blocks[lang][cat == "coding"]
            closers = lng.closers
        goal = cap + 1 if cap else target
        size = sum(map(len, parts))
        nb = len(blocks)
        while size < goal:
            block = blocks[int(rnd() * nb)]
            parts.append(block)
            size += len(block) + 2
        if not cap and rnd() < 0.65:
            parts.append(closers[int(rnd() * len(closers))])
        text = "\n\n".join(parts)
        return cut(text, cap) if cap else text

    def _en_opening(self, rng: random.Random, fill: _Fill) -> list[str]:
        parts = []
        r = rng.random()
        if r < 0.55:
            parts.append(_one(rng, self.cats[fill.category]["intros"]).format_map(fill))
        elif r < 0.85:
            parts.append(_one(rng, self.en_openers))
        if rng.random() < 0.018:
            parts.append(_one(rng, self.hedges))
        return parts

    def _blocks(
        self, rng: random.Random, weights: dict[str, int], pools, headings, cat: str, count: int
    ) -> tuple[str, ...]:
        """``count`` answer blocks drawn in advance, of the kinds in ``weights``' proportions."""
        kinds, cum = _cum(weights)
        out = [
            self._block(rng, _pick(rng, kinds, cum), cat, pools, headings, int(rng.random() * 3))
            for _ in range(count)
        ]
        return tuple(out)

    def _block(self, rng, kind, cat, pools, headings, style) -> str:
        own, generic = pools

        def sentence() -> str:
            return _one(rng, own if rng.random() < 0.75 else generic)

        if kind == "para":
            return " ".join(sentence() for _ in range(2 + int(rng.random() * 3)))
        if kind == "bullets":
            return "\n".join(f"- {sentence()}" for _ in range(3 + int(rng.random() * 4)))
        if kind == "numbered":
            return "\n".join(f"{i}. {sentence()}" for i in range(1, 4 + int(rng.random() * 4)))
        if kind == "heading":
            title = _one(rng, headings)
            head = ("## ", "### ", "**")[style] + title + ("**" if style == 2 else "")
            return f"{head}\n\n{sentence()} {sentence()}"
        if kind == "code":
            return self.code_block(rng, cat)
        # table
        rows = ["| segment | value | change |", "|---|---:|---:|"]
        for _ in range(2 + int(rng.random() * 5)):
            rows.append(
                f"| {_one(rng, _CSV_WORDS)} | {int(rng.random() * 9000):,} | "
                f"{rng.random() * 40 - 20:+.1f}% |"
            )
        return "\n".join(rows)

    def _translation(self, rng: random.Random, fill: _Fill, target: int, cap: int | None) -> str:
        tr = self.cats["translation"]
        lng = self.langs[fill["target_lang"]]
        parts = [_one(rng, tr["intros"]).format_map(fill)]
        if "phrase_index" in fill:
            parts.append(lng.phrases[int(fill["phrase_index"])])
        goal = cap + 1 if cap else target
        size = sum(map(len, parts))
        while size < goal:
            pool = self.lang_sentences[fill["target_lang"]]
            para = " ".join(_one(rng, pool) for _ in range(2 + int(rng.random() * 3)))
            parts.append(para)
            size += len(para) + 2
        if cap:
            return cut("\n\n".join(parts), cap)
        if rng.random() < 0.6:
            parts.append(_one(rng, tr["notes"]).format_map(fill))
        return "\n\n".join(parts)

    def variant_answer(self, rng: random.Random, fill: _Fill, target: int, cap: int) -> str:
        """An answer of the faulty ``v8`` prompt: an exhaustive numbered guide, cut at ``cap``."""
        iv = self.common["incident_variant"]
        parts = [_one(rng, iv["intros"])]
        size = len(parts[0])
        i = 0
        pools = (self.sentences[fill.category], self.generic)
        goal = min(target, cap + 1)
        while size < goal:
            i += 1
            step = _one(rng, iv["steps"]).format(i=i)
            detail = self._block(rng, "para", fill.category, pools, (), 0)
            parts.append(f"### Step {i}\n\n{step} {detail}")
            size += len(parts[-1]) + 2
        if target <= cap:
            parts.append(_one(rng, iv["closers"]))
            return "\n\n".join(parts)
        return cut("\n\n".join(parts), cap)


def cut(text: str, cap: int) -> str:
    """``text`` stopped where ``max_tokens`` would stop it: below ``cap`` characters, at a word
    boundary near the cap (anywhere for text without spaces, such as Chinese), not at the end of
    a sentence."""
    ends = ".!?:\n。！？"
    floor = max(0, cap - 200)
    idx = text.rfind(" ", floor, cap)
    while idx > floor and text[idx - 1] in ends:
        idx = text.rfind(" ", floor, idx - 1)
    if idx <= floor:
        idx = min(cap, len(text))
        while idx > 1 and text[idx - 1] in ends + " ":
            idx -= 1
    return text[:idx]


def _vary(rng: random.Random, text: str) -> str:
    """How people type: now and then a lower-case start, no final punctuation, two letters of a
    word swapped."""
    r = rng.random()
    if r < 0.25:
        text = text[:1].lower() + text[1:]
    if rng.random() < 0.2 and text[-1:] in "?.":
        text = text[:-1]
    if rng.random() < 0.08:
        at = int(rng.random() * max(1, len(text) - 3))
        if text[at : at + 2].isalpha():
            text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
    return text


@cache
def composer() -> Composer:
    """The process's composer (built on first use; read-only, shared)."""
    return Composer()
