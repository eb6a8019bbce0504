"""The synthetic generator's building blocks: a tool's parameters, how a value is drawn, how a request says it.

A `Param` draws a value (`sample`) and says it the way a user would (`say`: "2.5 million" for
2500000, "Denver" for "Denver, CO"); a `ToolSpec` is a function with its parameters, the request
templates that name them, and its purpose in words (the statement a no-fit answer gives). The
tables of tools are plain data in `catalog`; the row kinds built from them are in `kinds`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

CITIES = ["Paris", "Tokyo", "São Paulo", "Zürich", "New York", "Lagos", "Mumbai", "Reykjavík",
          "Kraków", "Cape Town", "Seoul", "Montréal", "東京", "Buenos Aires", "Oslo"]
CURRENCIES = ["USD", "EUR", "JPY", "GBP", "CHF", "BRL", "INR"]
TICKERS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SAP", "7203.T"]
LANGS = ["French", "German", "Japanese", "Spanish", "Korean", "Portuguese"]
WORDS = ["serendipity", "ephemeral", "quixotic", "lucid", "mellifluous", "sonder"]
TEAMS = ["Lakers", "Celtics", "Warriors", "Bulls", "Heat", "Nuggets"]
FOODS = ["ramen", "tacos", "paella", "falafel", "pierogi", "pho", "crème brûlée"]
GENRES = ["jazz", "techno", "bossa nova", "k-pop", "baroque", "afrobeat"]
ARTISTS = ["Miles Davis", "Björk", "Fela Kuti", "Nina Simone", "Daft Punk", "Caetano Veloso"]
NAMES = ["Alice", "Bob", "Chiara", "Dmitri", "Eun-ji", "Farah", "Gustavo", "Hana"]
ITEMS = ["laptop", "headphones", "coffee beans", "running shoes", "desk lamp", "notebook"]


@dataclass
class Param:
    """A parameter: xLAM type string, description, a value sampler and how the query says it."""

    name: str
    xtype: str
    description: str
    sample: Callable[[random.Random], Any]
    say: Callable[[Any], str] = str
    default: Any = None


@dataclass
class ToolSpec:
    name: str
    description: str
    params: list[Param]
    templates: list[str]  # each names the parameters it sets, as {param}
    purpose: str = ""  # "get the weather" — used in reasoning and in refusals
    extra: dict = field(default_factory=dict)

    def xlam(self) -> dict:
        params = {}
        for p in self.params:
            spec: dict[str, Any] = {"description": p.description, "type": p.xtype}
            if p.default is not None:
                spec["default"] = p.default
            params[p.name] = spec
        return {"name": self.name, "description": self.description, "parameters": params}


def pick(xs):
    return lambda r: r.choice(xs)


def ints(lo, hi):
    return lambda r: r.randint(lo, hi)


def floats(lo, hi, nd=2):
    return lambda r: round(r.uniform(lo, hi), nd)


def some(xs, k=(2, 3)):
    return lambda r: r.sample(xs, r.randint(*k))


def join(v):
    return ", ".join(map(str, v))


def yes_no(v):
    return "yes" if v else "no"




US_CITIES = [("Denver", "CO"), ("Austin", "TX"), ("Portland", "OR"), ("Miami", "FL"), ("Seattle", "WA"),
             ("Boston", "MA"), ("Phoenix", "AZ"), ("Chicago", "IL"), ("Atlanta", "GA"), ("Nashville", "TN"),
             ("Detroit", "MI"), ("Omaha", "NE"), ("Tucson", "AZ"), ("Buffalo", "NY"), ("Madison", "WI"),
             ("Boise", "ID"), ("Richmond", "VA"), ("Raleigh", "NC"), ("Columbus", "OH"), ("Pittsburgh", "PA"),
             ("Sacramento", "CA"), ("San Diego", "CA"), ("Salt Lake City", "UT"), ("Albuquerque", "NM"),
             ("Anchorage", "AK"), ("Honolulu", "HI"), ("Kansas City", "MO"), ("Las Vegas", "NV"), ("Houston", "TX"),
             ("Minneapolis", "MN"), ("Baltimore", "MD"), ("New Orleans", "LA"), ("Louisville", "KY"), ("Tulsa", "OK")]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
EVERY = {"daily": "every day", "weekly": "every week", "monthly": "every month"}


def city_state(r: random.Random) -> str:
    return "{}, {}".format(*r.choice(US_CITIES))


def city_only(v: str) -> str:
    return v.rsplit(", ", 1)[0]


def iso_date(r: random.Random) -> str:
    return f"2027-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"


def spoken_date(v: str) -> str:
    year, month, day = v.split("-")
    return f"{MONTHS[int(month) - 1]} {int(day)}, {year}"


def large(r: random.Random) -> int:
    # the number is drawn as it is said ("2.5 million") so that saying it back is exact
    return round(r.choice([1.5, 2, 2.5, 3, 4.2, 7, 12, 48, 250]) * r.choice([1_000, 1_000_000, 1_000_000_000]))


def say_large(v: int) -> str:
    for word, m in (("billion", 1_000_000_000), ("million", 1_000_000), ("thousand", 1_000)):
        if v >= m:
            return f"{v / m:g} {word}"
    return str(v)


def share(r: random.Random) -> float:
    return r.randrange(5, 100, 5) / 100


def percent(v: float) -> str:
    return f"{round(v * 100)}%"


def feet_inches(v: int) -> str:
    return f"{v // 12} ft {v % 12} in"


def si(unit: str, prefixes: dict[str, int]) -> tuple[Callable[[random.Random], float], Callable[[float], str]]:
    """A sampler of values in base units and how they are said with a prefix ("100µF" for 0.0001):
    the value is parsed from its decimal text, so that 100 µ is 0.0001 and not 100 * 1e-6."""
    def sample(r: random.Random) -> float:
        exp = r.choice(list(prefixes.values()))
        return float(f"{r.choice([1, 2.2, 4.7, 10, 47, 100, 220, 470])}e{exp}")

    def say(v: float) -> str:
        for prefix, exp in sorted(prefixes.items(), key=lambda kv: -kv[1]):
            m = Decimal(repr(v)).scaleb(-exp)
            if m >= 1:
                return f"{m.normalize():f}{prefix}{unit}"
        return f"{v}{unit}"
    return sample, say


def flag(r: random.Random) -> bool:
    return True


def unsaid(v: Any) -> str:  # a flag the template says in words of its own ("avoiding highways")
    return ""


COUNTS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "half a dozen", 10: "ten", 12: "a dozen", 20: "twenty"}
NIGHTS = {2: "a weekend", 3: "three nights", 7: "a week", 14: "two weeks", 10: "ten nights"}
ORDER = {"descending": "from highest to lowest", "ascending": "from lowest to highest"}


def words(table: dict[Any, str]) -> tuple[Callable[[random.Random], Any], Callable[[Any], str]]:
    """A value drawn from `table` and said by its words there ("a dozen" for 12)."""
    return (lambda r: r.choice(list(table))), table.__getitem__


FARADS = si("F", {"µ": -6, "n": -9, "m": -3})
OHMS = si("Ω", {"k": 3, "M": 6, "": 0})



def plural(v: str) -> str:
    return v + "s"


def numbers(r: random.Random) -> list[int]:
    return [r.randint(1, 99) for _ in range(r.randint(3, 6))]


def say_numbers(v: list[int]) -> str:
    return ", ".join(map(str, v[:-1])) + " and " + str(v[-1])



def said_flag(name: str, description: str) -> Param:
    """An optional flag, false by default, that a request sets in words of its own ("including seasonality")."""
    return Param(name, "bool, optional", f"{description} Default is false.", flag, unsaid, default=False)



PERCENTS = [1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 7.5, 8, 9, 10, 12, 15, 18, 20, 25]


def as_decimal(r: random.Random) -> float:
    return round(r.choice(PERCENTS) / 100, 4)


def say_decimal(v: float) -> str:  # 0.035 is said "3.5%"
    return f"{round(v * 100, 2):g}%"


def as_percent(r: random.Random) -> float:
    return float(r.choice(PERCENTS))


def say_percent(v: float) -> str:
    return f"{v:g}%"


def money(lo: float, hi: float, nd: int = 0) -> tuple[Callable[[random.Random], float], Callable[[float], str]]:
    """An amount of dollars, said as people write it ("$12,500", "$48.50")."""
    return lambda r: float(round(r.uniform(lo, hi), nd)), lambda v: f"${v:,.{nd}f}"


def rate(name: str, description: str, in_percent: bool = False) -> Param:
    """A rate the request says in percent ("4.5%"): a fraction (0.045) unless the description asks for percent."""
    return Param(name, "float", description, *((as_percent, say_percent) if in_percent else (as_decimal, say_decimal)))


