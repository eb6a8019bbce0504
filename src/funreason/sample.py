"""Generator of FunReason's bundled sample: synthetic xLAM-style function-calling rows.

Written by this project (no row comes from BFCL, which stays held out, and no tool shares a name
with a BFCL function: a shared name would let a model trained on the sample meet a BFCL entry's
function as an old friend, overstating what training taught). Many tools across domains
and query shapes: simple, multiple (distractor tools), parallel (one function several times),
parallel-multiple, optional parameters used or left out, lists, dicts, negative and float
numbers, unicode, and irrelevant queries whose answer is a statement. A share of the rows carry a
`reasoning` field written the way a teacher would explain the call.

Seven more shapes are generated apart from the sample, so that it stays as it is (`KINDS`,
`funreason sample --kind`): one sentence naming several values, one call each (`parallel_rows`); one
offered function that cannot serve the request, answered without a call (`no_fit_rows`); values
said in everyday words and written as the description asks (`phrased_rows`); an optional parameter
passed when the request names its value and left out when not (`optional_rows`, and `asked_rows`
on other tools); a rate said in percent written as a fraction or as said, as its description asks
(`rate_rows`); several calls in one sentence, a call per pair of two listed values or per request
(`multi_rows`); two to four cases told one after another, a call per case (`case_rows`). The
worded kinds have tools of their own, under the same rule: no BFCL name.

`python -m funreason.sample --out FILE` regenerates `funreason/data/sample_xlam.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
from decimal import Decimal
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from funreason.calls import format_python_call
from funreason.schema import Call

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


TOOLS: list[ToolSpec] = [
    ToolSpec("weather.current", "Get the current weather for a city.",
      [Param("city", "str", "Name of the city.", pick(CITIES)),
       Param("unit", "str, optional", "Temperature unit: celsius or fahrenheit.", pick(["celsius", "fahrenheit"]), default="celsius")],
      ["What's the weather like in {city} right now?", "Current weather in {city}, in {unit} please.",
       "Is it cold in {city} today? Give me the temperature in {unit}."], "look up the weather"),
    ToolSpec("weather.outlook", "Forecast the weather for the coming days.",
      [Param("city", "str", "City to forecast.", pick(CITIES)),
       Param("days", "int", "Number of days, 1 to 14.", ints(1, 14))],
      ["Forecast for {city} over the next {days} days?", "I'm travelling to {city}; what's the {days}-day forecast?"],
      "forecast the weather"),
    ToolSpec("fx.convert", "Convert an amount between currencies at today's rate.",
      [Param("amount", "float", "Amount to convert.", floats(1, 5000)),
       Param("from_currency", "str", "ISO code of the source currency.", pick(CURRENCIES)),
       Param("to_currency", "str", "ISO code of the target currency.", pick(CURRENCIES))],
      ["How much is {amount} {from_currency} in {to_currency}?", "Convert {amount} {from_currency} to {to_currency}."],
      "convert currencies"),
    ToolSpec("stock.quote", "Latest price quote for a stock ticker.",
      [Param("ticker", "str", "Ticker symbol.", pick(TICKERS)),
       Param("include_history", "bool, optional", "Also return the last 30 days.", lambda r: r.random() < 0.5, yes_no, default=False)],
      ["What's {ticker} trading at?", "Quote for {ticker}; include 30-day history: {include_history}."],
      "get a stock quote"),
    ToolSpec("arith.factorial", "Compute n! for a non-negative integer.",
      [Param("n", "int", "The number.", ints(0, 20))],
      ["What is {n} factorial?", "Compute the factorial of {n}."], "compute a factorial"),
    ToolSpec("arith.gcd", "Greatest common divisor of two integers.",
      [Param("a", "int", "First integer.", ints(-500, 500)), Param("b", "int", "Second integer.", ints(1, 900))],
      ["gcd of {a} and {b}?", "Find the greatest common divisor of {a} and {b}."], "compute a gcd"),
    ToolSpec("quadratic.real_roots", "Real roots of a*x^2 + b*x + c = 0.",
      [Param("a", "float", "Coefficient of x^2.", floats(-9, 9, 1)), Param("b", "float", "Coefficient of x.", floats(-20, 20, 1)),
       Param("c", "float", "Constant term.", floats(-30, 30, 1))],
      ["Solve {a}x^2 + {b}x + {c} = 0.", "Roots of the quadratic with a={a}, b={b}, c={c}?"], "solve a quadratic"),
    ToolSpec("statistics.mean", "Arithmetic mean of a list of numbers.",
      [Param("numbers", "List[float]", "The numbers.", lambda r: [round(r.uniform(-50, 50), 1) for _ in range(r.randint(3, 6))], join)],
      ["Average of {numbers}?", "What's the mean of these values: {numbers}"], "average numbers"),
    ToolSpec("language.translate", "Translate text into a target language.",
      [Param("text", "str", "Text to translate.", pick(["Good morning", "Where is the station?", "Thank you very much", "I love this song"])),
       Param("target_language", "str", "Language to translate into.", pick(LANGS)),
       Param("formal", "bool, optional", "Use the formal register.", lambda r: r.random() < 0.5, yes_no, default=False)],
      ["Translate '{text}' into {target_language}.", "How do I say '{text}' in {target_language}? Formal: {formal}."],
      "translate text"),
    ToolSpec("dictionary.define", "Definition of an English word.",
      [Param("word", "str", "The word.", pick(WORDS))],
      ["What does '{word}' mean?", "Define the word {word}."], "define a word"),
    ToolSpec("sports.standings", "League standings for a team's conference.",
      [Param("team", "str", "Team name.", pick(TEAMS)), Param("season", "int", "Season start year.", ints(1990, 2025))],
      ["Where did the {team} finish in the {season} season?", "Standings of the {team} for {season}."],
      "get sports standings"),
    ToolSpec("dining.find_restaurants", "Search restaurants by cuisine near a city.",
      [Param("city", "str", "City to search in.", pick(CITIES)), Param("cuisine", "str", "Kind of food.", pick(FOODS)),
       Param("max_price", "int, optional", "Price level from 1 to 4.", ints(1, 4), default=4)],
      ["Find {cuisine} places in {city}.", "Any {cuisine} restaurants in {city} at price level {max_price} or under?"],
      "find restaurants"),
    ToolSpec("music.play", "Play music by an artist or genre.",
      [Param("artist", "str", "Artist to play.", pick(ARTISTS)), Param("shuffle", "bool, optional", "Shuffle the tracks.", lambda r: r.random() < 0.5, yes_no, default=False),
       Param("minutes", "int, optional", "How long to play.", ints(5, 120), default=30)],
      ["Play some {artist}.", "Put on {artist} for {minutes} minutes.", "Play {artist}, shuffle: {shuffle}."],
      "play music"),
    ToolSpec("playlist.create", "Create a playlist from genres.",
      [Param("name", "str", "Playlist name.", pick(["Focus", "Sunday", "Road trip", "Café ☕", "Late night"])),
       Param("genres", "List[str]", "Genres to include.", some(GENRES), join)],
      ["Make a playlist called '{name}' with {genres}.", "Create playlist '{name}' mixing {genres}."],
      "create a playlist"),
    ToolSpec("mail.send", "Send an email.",
      [Param("to", "str", "Recipient address.", lambda r: r.choice(NAMES).lower().replace("-", "") + "@example.com"),
       Param("subject", "str", "Subject line.", pick(["Meeting moved", "Invoice", "Lunch?", "Résumé attached"])),
       Param("cc", "List[str], optional", "Addresses to copy.", lambda r: [n.lower() + "@example.org" for n in r.sample(NAMES, 2)], join)],
      ["Email {to} with the subject '{subject}'.", "Send '{subject}' to {to} and cc {cc}."], "send an email"),
    ToolSpec("calendar.create_event", "Create a calendar event.",
      [Param("title", "str", "Event title.", pick(["Dentist", "Team sync", "Yoga", "Call with Hana"])),
       Param("date", "str", "Date as YYYY-MM-DD.", lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
       Param("duration_minutes", "int, optional", "Length in minutes.", ints(15, 180), default=60)],
      ["Add '{title}' on {date}.", "Schedule {title} for {date}, {duration_minutes} minutes."], "create a calendar event"),
    ToolSpec("travel.search_flights", "Search flights between two cities.",
      [Param("origin", "str", "Departure city.", pick(CITIES)), Param("destination", "str", "Arrival city.", pick(CITIES)),
       Param("date", "str", "Departure date YYYY-MM-DD.", lambda r: f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"),
       Param("passengers", "int, optional", "Number of travellers.", ints(1, 6), default=1)],
      ["Flights from {origin} to {destination} on {date}?", "Find {passengers} seats {origin} → {destination} on {date}."],
      "search flights"),
    ToolSpec("travel.book_hotel", "Book a hotel room.",
      [Param("city", "str", "City.", pick(CITIES)), Param("nights", "int", "Number of nights.", ints(1, 14)),
       Param("preferences", "Dict[str, Any], optional", "Room preferences.",
         lambda r: {"breakfast": r.random() < 0.5, "beds": r.randint(1, 2)},
         lambda v: ", ".join(f"{k} {yes_no(x) if isinstance(x, bool) else x}" for k, x in v.items()))],
      ["Book a hotel in {city} for {nights} nights.", "Hotel in {city}, {nights} nights, preferences: {preferences}."],
      "book a hotel"),
    ToolSpec("geo.distance", "Distance between two points given as [lat, lon].",
      [Param("point_a", "List[float]", "[latitude, longitude] of the first point.", lambda r: [round(r.uniform(-90, 90), 3), round(r.uniform(-180, 180), 3)], join),
       Param("point_b", "List[float]", "[latitude, longitude] of the second point.", lambda r: [round(r.uniform(-90, 90), 3), round(r.uniform(-180, 180), 3)], join),
       Param("unit", "str, optional", "km or mi.", pick(["km", "mi"]), default="km")],
      ["Distance between ({point_a}) and ({point_b})?", "How far apart are {point_a} and {point_b} in {unit}?"],
      "measure a distance"),
    ToolSpec("recipes.search", "Find recipes by ingredient.",
      [Param("ingredients", "List[str]", "Ingredients to use.", some(["eggs", "rice", "tofu", "basil", "lentils", "chili", "lime"]), join),
       Param("vegetarian", "bool, optional", "Only vegetarian recipes.", lambda r: r.random() < 0.5, yes_no, default=False)],
      ["What can I cook with {ingredients}?", "Recipes using {ingredients}; vegetarian only: {vegetarian}."], "find recipes"),
    ToolSpec("nutrition.calories", "Calories in a serving of a food.",
      [Param("food", "str", "Food name.", pick(FOODS)), Param("grams", "int", "Serving size in grams.", ints(50, 600))],
      ["How many calories in {grams} g of {food}?", "Calories for {grams} grams of {food}?"], "count calories"),
    ToolSpec("shop.track_order", "Track an order by its id.",
      [Param("order_id", "str", "Order identifier.", lambda r: "".join(r.choices(string.ascii_uppercase + string.digits, k=8)))],
      ["Where is my order {order_id}?", "Track order {order_id} please."], "track an order"),
    ToolSpec("shop.search_products", "Search the shop's catalogue.",
      [Param("query", "str", "What to search for.", pick(ITEMS)), Param("max_price", "float, optional", "Upper price limit.", floats(10, 900), default=None),
       Param("sort", "str, optional", "relevance, price_asc or price_desc.", pick(["relevance", "price_asc", "price_desc"]), default="relevance")],
      ["Search for {query}.", "Find {query} under {max_price}.", "Show {query} sorted by {sort}."], "search products"),
    ToolSpec("bank.transfer", "Transfer money between accounts.",
      [Param("from_account", "str", "Source account.", pick(["checking", "savings", "joint"])),
       Param("to_account", "str", "Target account.", pick(["checking", "savings", "joint", "brokerage"])),
       Param("amount", "float", "Amount.", floats(5, 2500))],
      ["Move {amount} from {from_account} to {to_account}.", "Transfer {amount} from my {from_account} account to {to_account}."],
      "transfer money"),
    ToolSpec("loan.monthly_payment", "Monthly payment of an amortised loan.",
      [Param("principal", "float", "Loan amount.", floats(1000, 500000, 0)), Param("annual_rate", "float", "Interest rate in percent.", floats(0.5, 12, 2)),
       Param("years", "int", "Term in years.", ints(1, 30))],
      ["Monthly payment on {principal} at {annual_rate}% for {years} years?", "Loan of {principal}, {annual_rate}% a year, {years} years: monthly cost?"],
      "compute a loan payment"),
    ToolSpec("units.convert_temperature", "Convert a temperature between scales.",
      [Param("value", "float", "Temperature value.", floats(-60, 120, 1)),
       Param("from_scale", "str", "celsius, fahrenheit or kelvin.", pick(["celsius", "fahrenheit", "kelvin"])),
       Param("to_scale", "str", "celsius, fahrenheit or kelvin.", pick(["celsius", "fahrenheit", "kelvin"]))],
      ["Convert {value} degrees {from_scale} to {to_scale}.", "{value} {from_scale} is how much in {to_scale}?"],
      "convert a temperature"),
    ToolSpec("clock.convert_timezone", "Convert a time between time zones.",
      [Param("time", "str", "Time as HH:MM.", lambda r: f"{r.randint(0, 23):02d}:{r.choice([0, 15, 30, 45]):02d}"),
       Param("from_city", "str", "City of the given time.", pick(CITIES)), Param("to_city", "str", "City to convert to.", pick(CITIES))],
      ["It's {time} in {from_city}; what time is it in {to_city}?", "Convert {time} {from_city} time to {to_city}."],
      "convert time zones"),
    ToolSpec("news.headlines", "Top news headlines by topic.",
      [Param("topic", "str", "Topic.", pick(["science", "football", "markets", "climate", "AI"])),
       Param("limit", "int, optional", "How many headlines.", ints(1, 20), default=5),
       Param("language", "str, optional", "Language code.", pick(["en", "fr", "de", "ja", "pt"]), default="en")],
      ["Latest {topic} headlines?", "Give me {limit} {topic} headlines in {language}."], "fetch headlines"),
    ToolSpec("contacts.add", "Add a contact to the address book.",
      [Param("name", "str", "Full name.", pick(NAMES)), Param("phone", "str", "Phone number.", lambda r: f"+{r.randint(1, 99)} {r.randint(100, 999)} {r.randint(1000, 9999)}"),
       Param("tags", "List[str], optional", "Labels.", some(["family", "work", "gym", "school"], (1, 2)), join)],
      ["Save {name}'s number {phone}.", "Add {name}, {phone}, tagged {tags}."], "add a contact"),
    ToolSpec("reminders.set", "Set a reminder.",
      [Param("text", "str", "What to remember.", pick(["water the plants", "call mum", "pay rent", "renew passport"])),
       Param("minutes_from_now", "int", "When, in minutes from now.", ints(1, 600))],
      ["Remind me to {text} in {minutes_from_now} minutes.", "In {minutes_from_now} min: {text}."], "set a reminder"),
    ToolSpec("smart_home.set_thermostat", "Set the thermostat.",
      [Param("room", "str", "Room name.", pick(["living room", "bedroom", "office", "kitchen"])),
       Param("temperature", "float", "Target in celsius.", floats(15, 28, 1))],
      ["Set the {room} to {temperature} degrees.", "Thermostat in the {room}: {temperature}°C."], "set the thermostat"),
    ToolSpec("smart_home.lights", "Switch lights on or off and set brightness.",
      [Param("room", "str", "Room name.", pick(["living room", "bedroom", "office", "kitchen"])),
       Param("on", "bool", "Whether the lights are on.", lambda r: r.random() < 0.5, lambda v: "on" if v else "off"),
       Param("brightness", "int, optional", "Percent brightness.", ints(1, 100), default=100)],
      ["Turn the {room} lights {on}.", "Lights {on} in the {room} at {brightness}%."], "switch lights"),
    ToolSpec("fitness.log_run", "Log a run.",
      [Param("distance_km", "float", "Distance in km.", floats(1, 42.2, 1)), Param("minutes", "int", "Duration in minutes.", ints(5, 300)),
       Param("splits", "List[int], optional", "Seconds per km.", lambda r: [r.randint(240, 420) for _ in range(3)], join)],
      ["Log a {distance_km} km run in {minutes} minutes.", "I ran {distance_km} km in {minutes} min, splits {splits} seconds."],
      "log a run"),
    ToolSpec("cinema.search_movies", "Search movies by title words and year.",
      [Param("title", "str", "Words of the title.", pick(["Amélie", "Spirited Away", "Parasite", "City of God", "Arrival"])),
       Param("year", "int, optional", "Release year.", ints(1950, 2025), default=None)],
      ["Find the movie {title}.", "Is there a film called {title} from {year}?"], "search movies"),
    ToolSpec("books.recommend", "Recommend books like a given one.",
      [Param("title", "str", "A book the user liked.", pick(["Dune", "Beloved", "Norwegian Wood", "Cien años de soledad"])),
       Param("count", "int, optional", "How many.", ints(1, 10), default=3)],
      ["Books like {title}?", "Recommend {count} books similar to {title}."], "recommend books"),
]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
STATEMENT = "None of the available functions can {purpose}; they can only {offered}. Please provide a suitable tool."


def _draw(tool: ToolSpec, template: str, r: random.Random) -> tuple[dict[str, Any], dict[str, str]]:
    """Values for the parameters `template` names, in the tool's order, and how the query says them."""
    used = _PLACEHOLDER.findall(template)
    values = {p.name: p.sample(r) for p in tool.params if p.name in used}
    return values, {name: next(p for p in tool.params if p.name == name).say(v) for name, v in values.items()}


def instantiate(tool: ToolSpec, r: random.Random) -> tuple[str, Call]:
    """One request to `tool` from one of its templates, and the call that answers it."""
    template = r.choice(tool.templates)
    values, said = _draw(tool, template, r)
    return template.format(**said), Call(tool.name, values)


def _explain(tool: ToolSpec, call: Call) -> str:
    lines = [f"`{tool.name}` fits: it can {tool.purpose or tool.description.lower().rstrip('.')}."]
    for p in tool.params:
        if p.name in call.arguments:
            lines.append(f"The {p.name} ({p.xtype.split(',')[0]}) comes from the query: {call.arguments[p.name]!r}.")
        elif p.xtype.endswith("optional"):
            lines.append(f"{p.name} is optional and the query does not ask for it, so I leave it out.")
    lines.append(f"That gives {format_python_call(call)}.")
    return " ".join(lines)


def make_row(i: int, r: random.Random, with_reasoning: bool) -> dict[str, Any]:
    shape = r.choices(["simple", "multiple", "parallel", "parallel_multiple", "irrelevant"], [30, 30, 15, 15, 10])[0]
    main = r.choice(TOOLS)
    others = r.sample([t for t in TOOLS if t is not main], 3)
    if shape == "simple":
        tools, parts = [main], [main]
    elif shape == "multiple":
        tools, parts = [main, *others[: r.randint(1, 3)]], [main]
    elif shape == "parallel":
        tools, parts = [main, *others[:1]], [main] * r.randint(2, 3)
    elif shape == "parallel_multiple":
        tools, parts = [main, others[0], others[1]], [main, others[0]]
    else:
        tools, parts = others[: r.randint(1, 3)], []
    r.shuffle(tools)
    queries, calls, reasons = [], [], []
    for t in parts:
        q, c = instantiate(t, r)
        queries.append(q)
        calls.append(c)
        reasons.append(_explain(t, c))
    if shape == "irrelevant":
        q, _ = instantiate(main, r)
        offered = ", ".join(t.purpose or t.name for t in tools)
        answer: Any = STATEMENT.format(purpose=main.purpose, offered=offered)
        query = q
        reasoning = (
            f"The user wants to {main.purpose}. The available functions can only {offered}. "
            "None of them fits, so I should not call anything and say so."
        )
    else:
        query = queries[0] + "".join(" Also: " + q[0].lower() + q[1:] for q in queries[1:])
        answer = json.dumps([c.to_dict() for c in calls], ensure_ascii=False)
        lead = f"The user makes {len(calls)} request{'s' if len(calls) > 1 else ''}. "
        reasoning = lead + " ".join(reasons) + (
            f" So I call {len(calls)} functions in one list." if len(calls) > 1 else ""
        )
    row: dict[str, Any] = {
        "id": i,
        "query": query,
        "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
        "answers": answer,
    }
    if with_reasoning:
        row["reasoning"] = reasoning
    return row


def _say_all(values: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _scalar(p: Param) -> bool:
    return p.xtype.split(",")[0] in ("str", "int", "float")


def _listable(template: str, param: Param) -> bool:
    """Whether `param`'s slot in `template` can carry "a and b" and still read as one slot: a scalar,
    not quoted, not glued to other text ("{a}x^2" reads as one term), not beside a comma ("Add {name},
    {phone}" reads as one more item of the list)."""
    return (_scalar(param)
            and not re.search(rf"(['\w^]|, )\{{{param.name}\}}|\{{{param.name}\}}['\w^,]", template))


def _distinct(param: Param, k: int, taken: list[Any], r: random.Random) -> list[Any]:
    """Up to `k` distinct values of `param`, none in `taken`."""
    values: list[Any] = []
    for _ in range(30):  # a small pool may give fewer
        v = param.sample(r)
        if v not in values and v not in taken:
            values.append(v)
        if len(values) == k:
            break
    return values


def one_sentence_parallel_row(i: int, r: random.Random) -> dict[str, Any] | None:
    """A parallel row asked the way BFCL's parallel entries ask: one sentence naming several values
    of one parameter ("Compute the factorial of 5, 9 and 12."), answered with one call per value, the
    other values the same in each. The bundled sample's parallel rows join whole requests with
    "Also:", which a model trained on them does not carry over to such sentences. None when the
    drawn template cannot carry a list: no scalar parameter, an "and" of its own that would make the
    sentence ambiguous ("gcd of 4, 6 and 8 and 10?"), an equation, or the value quoted, glued to other
    text or beside a comma."""
    tool = r.choice(TOOLS)
    template = r.choice(tool.templates)
    used = _PLACEHOLDER.findall(template)
    scalars = [p for p in tool.params if p.name in used and _scalar(p)]
    if not scalars or " and " in template or "between" in template or "=" in template:
        return None
    varied = r.choice(scalars)
    if not _listable(template, varied):
        return None
    fixed = {p.name: p.sample(r) for p in tool.params if p.name in used and p is not varied}
    values = _distinct(varied, r.randint(2, 4), list(fixed.values()), r)  # none equal to another argument ("EUR to EUR")
    if len(values) < 2:
        return None
    say = {p.name: p.say(fixed[p.name]) for p in tool.params if p.name in fixed}
    say[varied.name] = _say_all([varied.say(v) for v in values])
    calls = [Call(tool.name, {p.name: v if p is varied else fixed[p.name] for p in tool.params if p.name in used})
             for v in values]
    tools = [tool, *r.sample([t for t in TOOLS if t is not tool], r.randint(0, 2))]
    r.shuffle(tools)
    reasoning = (f"The user asks the same thing for {len(values)} values of {varied.name}: "
                 f"{_say_all([repr(v) for v in values])}. `{tool.name}` fits, so I call it once for each value: "
                 + ", ".join(format_python_call(c) for c in calls) + ".")
    return {"id": f"parallel-{i}", "query": template.format(**say), "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([c.to_dict() for c in calls], ensure_ascii=False), "reasoning": reasoning}


def _until(n: int, make: Callable[[int, random.Random], dict[str, Any] | None], r: random.Random) -> list[dict[str, Any]]:
    """`n` rows of `make(i, r)`, drawing again where it declines (None)."""
    rows: list[dict[str, Any]] = []
    while len(rows) < n:
        if (row := make(len(rows), r)) is not None:
            rows.append(row)
    return rows


def parallel_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` one-sentence parallel rows (`one_sentence_parallel_row`), generated apart from the bundled
    sample so that asking for them leaves the sample as it is."""
    return _until(n, one_sentence_parallel_row, random.Random(f"parallel/{seed}"))


# --- multi rows: several calls asked in one sentence, two values varied at once

def _cross_row(tool: ToolSpec, template: str, varied: list[Param], fixed: dict[str, Any], r: random.Random):
    """Both varied slots list their values ("the Lakers and the Bulls in 2018 and 2020"): a call for
    every pair, as BFCL's parallel entries ask."""
    a, b = varied
    va = _distinct(a, r.choice([2, 2, 3]), list(fixed.values()), r)
    vb = _distinct(b, 2, list(fixed.values()) + va, r)
    if len(va) < 2 or len(vb) < 2:
        return None
    said = {p.name: p.say(fixed[p.name]) for p in tool.params if p.name in fixed}
    said[a.name], said[b.name] = _say_all([a.say(v) for v in va]), _say_all([b.say(v) for v in vb])
    calls = [Call(tool.name, {p.name: x if p is a else y if p is b else fixed[p.name] for p in tool.params
                              if p.name in fixed or p is a or p is b}) for x in va for y in vb]
    why = (f"The user names {len(va)} values of {a.name} and {len(vb)} of {b.name} and wants every pair, so "
           f"I call `{tool.name}` {len(calls)} times")
    return template.format(**said), calls, why


def _paired_row(tool: ToolSpec, template: str, varied: list[Param], fixed: dict[str, Any], r: random.Random):
    """Two or three requests to one function that differ in one or two values, the second and third
    said without the words they share with the first ("Book a hotel in Oslo for 3 nights and in Lima
    for 5 nights."): a call for each. Two are joined by a bare "and", as BFCL's paired requests are
    ("Taylor Swift for 20 minutes and Maroon 5 for 15 minutes"), so that what tells them from a
    crossed request ("the Lakers and the Bulls in 2018 and 2020") is where the values stand, not a comma."""
    k = r.choice([2, 2, 3])
    columns = [_distinct(p, k, list(fixed.values()), r) for p in varied]
    if min(map(len, columns)) < k:
        return None
    groups = [{p.name: col[j] for p, col in zip(varied, columns)} for j in range(k)]
    by_name = {p.name: p for p in tool.params}
    sentences = [template.format(**{n: by_name[n].say(v) for n, v in {**fixed, **g}.items()}) for g in groups]
    end = sentences[0][-1] if sentences[0][-1] in ".?!" else ""
    words = [s.rstrip(".?!").split(" ") for s in sentences]
    shared = 0
    while all(len(w) > shared + 1 and w[shared] == words[0][shared] for w in words):
        shared += 1
    parts = [" ".join(words[0])] + [" ".join(w[shared:]) for w in words[1:]]
    query = (" and ".join(parts) if k == 2 else ", ".join(parts[:-1]) + ", and " + parts[-1]) + end
    calls = [Call(tool.name, {p.name: g.get(p.name, fixed.get(p.name)) for p in tool.params if p.name in fixed or p.name in g})
             for g in groups]
    why = (f"The user asks {k} times, with other values of {' and '.join(p.name for p in varied)} each time, "
           f"so I call `{tool.name}` {k} times")
    return query, calls, why


def multi_call_row(i: int, r: random.Random) -> dict[str, Any] | None:
    """A request for several calls of one function in one sentence, in BFCL's parallel shapes the
    parallel rows lack: two slots listing values, a call per pair (`_cross_row`); or two or three
    requests that differ in one or two values, the repeated words left out (`_paired_row`). None
    when the drawn template has too few slots that can carry a list, a list of its own, or an "and"."""
    tool = r.choice(TOOLS)
    template = r.choice(tool.templates)
    used = _PLACEHOLDER.findall(template)
    listed = any(p.name in used and p.xtype.split(",")[0] not in ("str", "int", "float", "bool") for p in tool.params)
    if listed or " and " in template or "between" in template or "=" in template:  # a list's commas would blur the values'
        return None
    slots = [p for p in tool.params if p.name in used and _listable(template, p)]
    if len(slots) < 2:
        return None
    cross = r.random() < 0.5
    varied = r.sample(slots, 2 if cross else r.choice([1, 2]))
    fixed = {p.name: p.sample(r) for p in tool.params if p.name in used and p not in varied}
    made = (_cross_row if cross else _paired_row)(tool, template, varied, fixed, r)
    if made is None:
        return None
    query, calls, why = made
    tools = [tool, *r.sample([t for t in TOOLS if t is not tool], r.randint(0, 2))]
    r.shuffle(tools)
    reasoning = f"{why}: " + ", ".join(format_python_call(c) for c in calls) + "."
    return {"id": f"multi-{i}", "query": query, "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([c.to_dict() for c in calls], ensure_ascii=False), "reasoning": reasoning}


def multi_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` multi-call rows (`multi_call_row`), half a call per pair of two listed values, half two or
    three requests said as one; generated apart from the bundled sample, which stays as it is."""
    return _until(n, multi_call_row, random.Random(f"multi/{seed}"))


def one_function_no_fit_row(i: int, r: random.Random) -> dict[str, Any]:
    """An irrelevance row in the shape of BFCL's: a short request and one function offered that cannot
    serve it, answered with a statement and no call. The bundled sample's irrelevant rows offer one to
    three tools, the open data's offer several beside long requests; BFCL offers one, and a model
    that has only seen one offered function answered by a call learns to call it whatever is asked.
    The offered tool is from another family than the request's (not `weather.outlook` for a
    `weather.current` request), so that no reading of the request makes the call right."""
    main = r.choice(TOOLS)
    family = main.name.split(".")[0]
    other = r.choice([t for t in TOOLS if t.name.split(".")[0] != family])
    query, _ = instantiate(main, r)
    offered = other.purpose or other.name
    reasoning = (f"The user wants to {main.purpose}. The only function, `{other.name}`, can {offered}. "
                 "It does not fit, so I should not call it and say so.")
    return {"id": f"no-fit-{i}", "query": query, "tools": json.dumps([other.xlam()], ensure_ascii=False),
            "answers": STATEMENT.format(purpose=main.purpose, offered=offered), "reasoning": reasoning}


def no_fit_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` one-function irrelevance rows (`one_function_no_fit_row`), generated apart from the bundled
    sample so that asking for them leaves the sample as it is."""
    r = random.Random(f"no-fit/{seed}")
    return [one_function_no_fit_row(i, r) for i in range(n)]


# --- phrased rows: values the request states in everyday words, written as the tool's description asks

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

PHRASED_TOOLS: list[ToolSpec] = [
    ToolSpec("parcel.quote_shipping", "Price of shipping a parcel within the US.",
      [Param("weight_kg", "float", "Weight in kilograms.", floats(0.5, 30, 1), lambda v: f"{v}kg"),
       Param("destination", "str", "City and state abbreviation, e.g. 'Boise, ID'.", city_state, city_only),
       Param("express", "bool, optional", "Next-day delivery.", flag, unsaid, default=False)],
      ["How much to ship a {weight_kg} box to {destination}?",
       "Quote for sending {weight_kg} to {destination} by express{express}.",
       "What does a {weight_kg} parcel to {destination} cost with next-day delivery{express}?"], "price a parcel"),
    ToolSpec("garden.plan_bed", "Plan a rectangular garden bed.",
      [Param("width", "float", "Width of the bed.", floats(0.5, 12, 1)), Param("length", "float", "Length of the bed.", floats(1, 20, 1)),
       Param("unit", "str, optional", "Unit of length: 'm', 'ft' or 'cm'.", pick(["m", "ft", "cm"]), default="m"),
       Param("raised", "bool, optional", "A raised bed.", flag, unsaid, default=False)],
      ["Plan a garden bed {width} {unit} wide and {length} {unit} long.", "Plan a bed of {width} by {length}.",
       "I want a raised{raised} bed, {width}{unit} by {length}{unit}.", "Lay out a {width} x {length} bed."], "plan a garden bed"),
    ToolSpec("census.population_density", "People per square kilometre of a region.",
      [Param("population", "int", "Number of inhabitants.", large, say_large),
       Param("area_km2", "float", "Land area in square kilometres.", floats(100, 90000, 0)),
       Param("region", "str, optional", "Name of the region.", pick(["Patagonia", "Bavaria", "Kerala", "Ontario", "Hokkaido"]), default=None)],
      ["What is the density of {region}, with {population} people on {area_km2} square kilometres?",
       "{population} inhabitants over {area_km2} km²: people per square kilometre?"], "compute a population density"),
    ToolSpec("survey.expected_responses", "Expected number of answers to a survey.",
      [Param("sent", "int", "Surveys sent.", ints(50, 20000)),
       Param("response_rate", "float", "Share that answers, as a fraction between 0 and 1.", share, percent)],
      ["We send {sent} surveys and expect {response_rate} back: how many answers?",
       "With a {response_rate} response rate, how many of {sent} surveys come back?"], "estimate survey answers"),
    ToolSpec("clinic.book_visit", "Book a clinic appointment.",
      [Param("patient", "str", "Patient name.", pick(NAMES)), Param("date", "str", "Date as YYYY-MM-DD.", iso_date, spoken_date),
       Param("duration_minutes", "int, optional", "Length in minutes.", lambda r: 60 * r.randint(1, 3), lambda v: f"{v // 60} hour{'s' if v > 60 else ''}", default=30),
       Param("follow_up", "bool, optional", "Also book a follow-up visit.", flag, unsaid, default=False)],
      ["Book {patient} in on {date}.", "Book {patient} for {duration_minutes} on {date}.",
       "Book {patient} on {date} and schedule a follow-up{follow_up} too."], "book a clinic visit"),
    ToolSpec("wellness.body_index", "Body mass index from imperial measures.",
      [Param("weight_lb", "float", "Weight in pounds.", ints(90, 300), lambda v: f"{v}lbs"),
       Param("height_in", "int", "Height in inches.", ints(58, 78), feet_inches)],
      ["BMI for someone who weighs {weight_lb} and is {height_in} tall?", "I'm {height_in} and {weight_lb}: what's my body mass index?"],
      "compute a body mass index"),
    ToolSpec("alerts.subscribe", "Subscribe to alerts on a topic.",
      [Param("topic", "str", "Topic.", pick(["rail strikes", "pollen", "earthquakes", "price drops", "road works"])),
       Param("frequency", "str", "How often: 'daily', 'weekly' or 'monthly'.", *words(EVERY)),
       Param("sms", "bool, optional", "Also send a text message.", flag, unsaid, default=False)],
      ["Send me {topic} alerts {frequency}.", "Alert me about {topic} {frequency}, by text message{sms} as well."],
      "subscribe to alerts"),
    ToolSpec("electronics.rc_cutoff", "Cut-off frequency of an RC filter.",
      [Param("resistance", "float", "Resistance in ohms.", OHMS[0], OHMS[1]),
       Param("capacitance", "float", "Capacitance in farads.", FARADS[0], FARADS[1])],
      ["Cut-off of an RC filter with {resistance} and {capacitance}?", "What frequency does a {capacitance} capacitor with {resistance} cut at?"],
      "compute a filter cut-off"),
    ToolSpec("routes.plan_drive", "Plan a drive between two US cities.",
      [Param("origin", "str", "City and state abbreviation, e.g. 'Tulsa, OK'.", city_state, city_only),
       Param("destination", "str", "City and state abbreviation, e.g. 'Tulsa, OK'.", city_state, city_only),
       Param("avoid_highways", "bool, optional", "Stay off highways.", flag, unsaid, default=False)],
      ["Plan a drive from {origin} to {destination}.", "Drive {origin} to {destination} avoiding highways{avoid_highways}."],
      "plan a drive"),
    ToolSpec("lab.dilute_solution", "Dilute a stock solution.",
      [Param("volume_l", "float", "Final volume in litres.", lambda r: r.choice([50, 100, 250, 500, 750]) / 1000, lambda v: f"{round(v * 1000)} mL"),
       Param("concentration", "float", "Target concentration as a fraction between 0 and 1.", share, percent)],
      ["Make {volume_l} of a {concentration} solution.", "Dilute to {concentration} in {volume_l}."], "dilute a solution"),
    ToolSpec("groceries.order", "Order groceries for delivery.",
      [Param("item", "str", "What to order.", pick(["eggs", "lemons", "bagels", "oat milk", "apples"])),
       Param("quantity", "int", "How many.", *words(COUNTS))],
      ["Order {quantity} {item}.", "Get me {quantity} {item} delivered."], "order groceries"),
    ToolSpec("rentals.reserve_cabin", "Reserve a cabin for some nights.",
      [Param("region", "str", "Region.", pick(["the Alps", "Lapland", "the Rockies", "Tasmania", "the Highlands"])),
       Param("nights", "int", "Number of nights.", *words(NIGHTS))],
      ["Reserve a cabin in {region} for {nights}.", "We'd like a cabin in {region}, {nights}."], "reserve a cabin"),
    ToolSpec("leaderboard.rank", "Rank players by a metric.",
      [Param("metric", "str", "What to rank by.", pick(["goals", "assists", "saves", "minutes played"])),
       Param("order", "str", "'ascending' or 'descending'.", *words(ORDER)),
       Param("limit", "int, optional", "How many players to list.", *words({3: "three", 5: "five", 10: "ten"}), default=20)],
      ["Rank players by {metric} {order}.", "List the top {limit} players by {metric}, {order}."], "rank players"),
    ToolSpec("pets.adoption_search", "Search adoptable pets.",
      [Param("species", "str", "Kind of animal.", pick(["dog", "cat", "rabbit"])),
       Param("traits", "List[str]", "Required traits.", some(["house-trained", "good with kids", "vaccinated", "calm"], (2, 2)),
             lambda v: " and ".join(v))],
      ["Find a {species} to adopt that is {traits}.", "Any adoptable {species} that's {traits}?"], "search adoptable pets"),
]


def _explain_phrased(tool: ToolSpec, call: Call, said: dict[str, str]) -> str:
    lines = [f"`{tool.name}` fits: it can {tool.purpose}."]
    for p in tool.params:
        if p.name not in call.arguments:
            if p.xtype.endswith("optional"):
                lines.append(f"{p.name} is optional and the query does not say it, so I leave it out.")
            continue
        v = call.arguments[p.name]
        how = (f"the query asks for it in words, so {v!r}" if not said[p.name]
               else f"the query says {said[p.name]!r} and {p.name} wants {p.description[0].lower() + p.description[1:].rstrip('.')}, so {v!r}")
        lines.append(f"{p.name}: {how}.")
    lines.append(f"That gives {format_python_call(call)}.")
    return " ".join(lines)


def _worded_row(choices: list[ToolSpec], pool: list[ToolSpec], row_id: str, r: random.Random) -> dict[str, Any]:
    """One request to a tool of `choices`, its values drawn until no two are said alike, beside
    zero to two other tools of `pool`, with reasoning that says where each value comes from."""
    tool = r.choice(choices)
    template = r.choice(tool.templates)
    while True:  # no two parameters said alike ("a drive from Boise to Boise")
        values, said = _draw(tool, template, r)
        if len({x for x in said.values() if x}) == sum(1 for x in said.values() if x):
            break
    call = Call(tool.name, values)
    tools = [tool, *r.sample([t for t in pool if t is not tool], r.choice([0, 0, 1, 2]))]
    r.shuffle(tools)
    return {"id": row_id, "query": template.format(**said), "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([call.to_dict()], ensure_ascii=False), "reasoning": _explain_phrased(tool, call, said)}


def _worded_rows(kind: str, choices: list[ToolSpec], pool: list[ToolSpec], n: int, seed: int) -> list[dict[str, Any]]:
    """`n` rows of `_worded_row` with ids `KIND-i`, from a generator of their own (seeded by kind
    and seed) so that asking for them leaves the bundled sample and the other kinds as they are."""
    r = random.Random(f"{kind}/{seed}")
    return [_worded_row(choices, pool, f"{kind}-{i}", r) for i in range(n)]


def phrased_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` requests whose values are stated as people say them and must be written as the function's
    description asks: "2.5 million" as 2500000, "40%" as a fraction 0.4, "5 ft 10 in" as 70 inches,
    "100µF" in farads, "Denver" as "Denver, CO" where "City and state" is asked, "every week" as
    'weekly', a flag said in words ("avoiding highways") as True, and an optional unit named beside
    a number ("3 ft wide") passed on, one left unsaid left out. The sample states most values as the
    call writes them, and a model trained on it copies text; BFCL's requests are phrased like these."""
    return _worded_rows("phrased", PHRASED_TOOLS, TOOLS + PHRASED_TOOLS, n, seed)


# --- optional rows: an optional parameter is passed when the request names its value, left out when not


def plural(v: str) -> str:
    return v + "s"


def numbers(r: random.Random) -> list[int]:
    return [r.randint(1, 99) for _ in range(r.randint(3, 6))]


def say_numbers(v: list[int]) -> str:
    return ", ".join(map(str, v[:-1])) + " and " + str(v[-1])


OPTIONAL_TOOLS: list[ToolSpec] = [
    ToolSpec("textiles.fabric_quote", "Price of a length of fabric.",
      [Param("length_m", "float", "Length in metres.", floats(1, 20, 1), lambda v: f"{v} meters"),
       Param("material", "str, optional", "Fabric: 'cotton', 'linen', 'silk' or 'wool'. Default is 'cotton'.",
             pick(["linen", "silk", "wool"]), default="cotton")],
      ["How much do {length_m} of {material} cost?", "Price {length_m} of fabric.", "Quote me {length_m} of {material} fabric.",
       "What would {length_m} of cloth cost?"], "price fabric"),
    ToolSpec("numerics.find_root", "Find a root of an equation f(x) = 0.",
      [Param("expression", "str", "The function f(x).", pick(["x^3 - 2x - 5", "cos(x) - x", "x^2 - 7", "e^x - 3x"])),
       Param("method", "str, optional", "Numerical method: 'bisection', 'newton' or 'secant'. Default is 'bisection'.",
             pick(["newton", "secant"]), default="bisection"),
       Param("tolerance", "float, optional", "Stopping tolerance. Default is 0.000001.", pick([0.01, 0.001, 0.0001]), default=0.000001)],
      ["Find a root of {expression}.", "Find a root of {expression} using the {method} method.",
       "Solve {expression} = 0 with the {method} method to a tolerance of {tolerance}.", "Solve {expression} = 0 to within {tolerance}."],
      "find a root"),
    ToolSpec("stats.describe", "Summary statistics of a list of numbers.",
      [Param("values", "List[int]", "The numbers.", numbers, say_numbers),
       Param("include_median", "bool, optional", "Whether to include the median. Default is false.", flag, unsaid, default=False)],
      ["Describe the numbers {values}.", "Give summary statistics of {values}, with the median{include_median} included.",
       "Summarize {values}."], "summarise numbers"),
    ToolSpec("library.find_books", "Search a library catalogue.",
      [Param("topic", "str", "Subject of the books.", pick(["volcanoes", "jazz history", "beekeeping", "chess", "glaciers"])),
       Param("format", "str, optional", "Format: 'print', 'ebook' or 'audiobook'. Default is 'print'.",
             pick(["ebook", "audiobook"]), plural, default="print"),
       Param("language", "str, optional", "Language of the books. Default is 'English'.",
             pick(["Spanish", "German", "Japanese", "Portuguese"]), default="English")],
      ["Find books about {topic}.", "Find {format} about {topic}.", "Find {format} about {topic} in {language}.",
       "Any books on {topic} in {language}?"], "search the library"),
    ToolSpec("kitchen.find_recipe", "Find a recipe.",
      [Param("dish", "str", "The dish.", pick(["lasagna", "curry", "pancakes", "chili", "dumplings"])),
       Param("diet", "str, optional", "Diet: 'vegan', 'vegetarian', 'gluten-free' or 'any'. Default is 'any'.",
             pick(["vegan", "vegetarian", "gluten-free"]), default="any"),
       Param("max_minutes", "int, optional", "Longest preparation time in minutes.", pick([20, 30, 45, 60]),
             lambda v: f"{v} minutes", default=None)],
      ["A recipe for {dish}.", "A {diet} {dish} recipe.", "A {diet} recipe for {dish} that takes under {max_minutes}.",
       "{dish} I can make in under {max_minutes}?"], "find a recipe"),
    ToolSpec("staff.fetch_record", "Fetch parts of an employee's record.",
      [Param("employee_id", "int", "Employee number.", ints(100, 9999)),
       Param("sections", "List[str], optional", "Sections to return: 'contact', 'salary', 'history'. Default is ['contact'].",
             some(["contact", "salary", "history"], (1, 2)), lambda v: " and ".join(v), default=["contact"])],
      ["Get the record of employee {employee_id}.", "Get the {sections} records of employee {employee_id}.",
       "Show me {sections} for employee {employee_id}."], "fetch an employee record"),
    ToolSpec("climate.station_stats", "Weather statistics of a station.",
      [Param("station", "str", "Station name.", pick(["Reykjavík", "Tromsø", "Anchorage", "Ushuaia", "Nuuk"])),
       Param("metric", "str, optional", "'temperature', 'rainfall' or 'wind'. Default is 'temperature'.",
             pick(["rainfall", "wind"]), default="temperature"),
       Param("period", "str, optional", "'month', 'season' or 'year'. Default is 'month'.",
             *words({"season": "over the last season", "year": "over the last year"}), default="month")],
      ["Weather statistics for {station}.", "{metric} statistics for {station} {period}.", "Show {station}'s {metric} record.",
       "How was the weather in {station} {period}?"], "report station statistics"),
    ToolSpec("music.concerts_in", "Concerts in a city.",
      [Param("city", "str", "City name only, such as 'Boston'.", lambda r: r.choice(US_CITIES)[0]),
       Param("genre", "str, optional", "Music genre. Default is all genres.", pick(GENRES), default=None),
       Param("free_only", "bool, optional", "Only free concerts. Default is false.", flag, unsaid, default=False)],
      ["Concerts in {city}?", "Any {genre} concerts in {city}?", "Free{free_only} concerts in {city} this weekend?"],
      "list concerts"),
    ToolSpec("transit.next_departures", "Next departures from a stop.",
      [Param("stop", "str", "Stop name.", pick(["Central Station", "Harbour Square", "Oak Street", "University"])),
       Param("mode", "str, optional", "'bus', 'tram' or 'train'. Default is 'bus'.", pick(["tram", "train"]), default="bus"),
       Param("limit", "int, optional", "How many departures. Default is 5.", pick([3, 10]), default=5)],
      ["Next departures from {stop}.", "Next {mode} departures from {stop}.", "The next {limit} {mode} departures from {stop}."],
      "list departures"),
    ToolSpec("printing.poster_cost", "Price of printing posters.",
      [Param("copies", "int", "Number of posters.", ints(5, 500)),
       Param("size", "str, optional", "'A3', 'A2' or 'A1'. Default is 'A3'.", pick(["A2", "A1"]), default="A3"),
       Param("glossy", "bool, optional", "Glossy paper. Default is false.", flag, unsaid, default=False)],
      ["Print {copies} posters.", "Print {copies} {size} posters.", "Print {copies} glossy{glossy} posters in {size}."],
      "price posters"),
    ToolSpec("astronomy.visible_planets", "Planets visible on a night.",
      [Param("date", "str", "Date as YYYY-MM-DD.", iso_date, spoken_date),
       Param("latitude", "float, optional", "Observer latitude in degrees. Default is 0.", floats(-60, 60, 1), lambda v: f"{v}°", default=0),
       Param("include_moon", "bool, optional", "Also report the Moon. Default is false.", flag, unsaid, default=False)],
      ["Which planets are visible on {date}?", "Which planets can I see on {date} at latitude {latitude}?",
       "Planets and the Moon{include_moon} on {date}?"], "list visible planets"),
    ToolSpec("language.translate_text", "Translate a sentence.",
      [Param("text", "str", "The text.", pick(["Where is the station?", "Thank you for dinner", "See you tomorrow"])),
       Param("target", "str", "Target language.", pick(LANGS)),
       Param("formality", "str, optional", "'formal' or 'informal'. Default is 'informal'.", pick(["formal"]), default="informal")],
      ["Translate '{text}' into {target}.", "Translate '{text}' into {formality} {target}."], "translate text"),
]


def optional_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` requests that name the value of an optional parameter ("using the newton method", "in
    Spanish", "audiobooks", "with the median") and so pass it, or name none and leave them out.
    A model trained on requests that rarely set optional parameters drops them even when asked;
    BFCL's simple requests often set one. Beside them, a city asked as a name only stays a name."""
    return _worded_rows("optional", OPTIONAL_TOOLS, TOOLS + PHRASED_TOOLS + OPTIONAL_TOOLS, n, seed)


# --- asked rows: the optional rows' lesson on tools of their own, asked for the way requests ask in passing

def said_flag(name: str, description: str) -> Param:
    """An optional flag, false by default, that a request sets in words of its own ("including seasonality")."""
    return Param(name, "bool, optional", f"{description} Default is false.", flag, unsaid, default=False)


ASKED_TOOLS: list[ToolSpec] = [
    ToolSpec("geometry.square_area", "Area of a square.",
      [Param("side", "float", "Length of a side.", floats(1, 30, 1)),
       Param("unit", "str, optional", "Unit of the side: 'cm', 'meters', 'feet' or 'inches'. Default is 'cm'.",
             pick(["meters", "feet", "inches", "cm"]), default="cm")],
      ["What is the area of a square with a side of {side} {unit}?", "Area of a square whose side is {side}.",
       "How big is a square of side {side} {unit}?"], "compute a square's area"),
    ToolSpec("fungi.identify", "Identify a mushroom from what it looks like.",
      [Param("color", "str", "Cap colour.", pick(["brown", "white", "red", "yellow"])),
       Param("habitat", "str", "Where it grows.", pick(["meadow", "pine forest", "swamp", "lawn"])),
       Param("size", "str, optional", "Size of the mushroom: 'tiny', 'medium' or 'large'. Default is 'medium'.",
             pick(["tiny", "medium", "large"]), default="medium")],
      ["Identify a {size} {color} mushroom in a {habitat}.", "What is the {color} mushroom growing on my {habitat}?",
       "Name a {color} mushroom from a {habitat}."], "identify a mushroom"),
    ToolSpec("history.topic_overview", "An overview of a historical topic.",
      [Param("topic", "str", "The topic.", pick(["the Roman aqueducts", "the Silk Road", "the Hanseatic League", "the Meiji Restoration"])),
       said_flag("detailed", "Whether to give a detailed account.")],
      ["Give me detailed{detailed} information about {topic}.", "Tell me about {topic}.",
       "I need a detailed{detailed} history of {topic}.", "A short overview of {topic}, please."], "give a historical overview"),
    ToolSpec("retail.sales_forecast", "Forecast the sales of a product.",
      [Param("product", "str", "The product.", pick(["umbrellas", "sunscreen", "snow boots", "ice cream"])),
       Param("months", "int", "How many months ahead.", pick([3, 6, 12, 18])),
       said_flag("include_seasonality", "Whether to model seasonal effects.")],
      ["Forecast the sales of {product} for the next {months} months including seasonality{include_seasonality}.",
       "Forecast {product} sales {months} months ahead.",
       "How will {product} sell over the next {months} months, taking the seasons into account{include_seasonality}?"],
      "forecast sales"),
    ToolSpec("wildlife.lake_census", "Count of a lake's fish.",
      [Param("lake", "str", "Lake name.", pick(["Lake Ladoga", "Lake Titicaca", "Lake Malawi", "Lake Geneva"])),
       Param("year", "int", "Year of the census.", ints(2005, 2023)),
       said_flag("by_species", "Whether to break the count down by species.")],
      ["How many fish, and of which species{by_species}, lived in {lake} in {year}?",
       "Fish count of {lake} in {year}.", "Give the number and the species{by_species} of fish in {lake} for {year}."],
      "count a lake's fish"),
    ToolSpec("numbers.divisors", "The divisors of a whole number.",
      [Param("number", "int", "The number.", ints(12, 500)),
       Param("output_format", "str, optional", "How to return them: 'list', 'set' or 'string'. Default is 'list'.",
             pick(["set", "string", "list"]), default="list")],
      ["What are the divisors of {number}? Return them as a {output_format}.", "List the divisors of {number}.",
       "Divisors of {number}, in the form of a {output_format}."], "list divisors"),
    ToolSpec("numerics.estimate_pi", "Estimate pi numerically.",
      [Param("samples", "int", "Number of samples or terms.", pick([1000, 10000, 50000])),
       Param("method", "str, optional", "Method: 'leibniz', 'monte carlo' or 'wallis'. Default is 'leibniz'.",
             pick(["monte carlo", "wallis"]), default="leibniz")],
      ["Estimate pi with {samples} samples using the {method} method.", "Estimate pi from {samples} terms.",
       "Use the {method} method with {samples} terms to approximate pi."], "estimate pi"),
    ToolSpec("oncology.growth_projection", "Project the growth of a cell culture.",
      [Param("weeks", "int", "Weeks ahead.", pick([4, 8, 12, 26])),
       Param("model", "str, optional", "Growth model: 'gompertz', 'logistic' or 'exponential'. Default is 'logistic'.",
             pick(["gompertz", "exponential", "logistic"]), default="logistic")],
      ["Project the culture's growth over {weeks} weeks using the {model} model.", "Project the culture's growth for {weeks} weeks.",
       "Growth of the culture over the next {weeks} weeks with a {model} model?"], "project growth"),
    ToolSpec("weather.rain_total", "Expected rainfall over the coming days.",
      [Param("city", "str", "City name.", pick(["Lima", "Bergen", "Manila", "Cork", "Hilo"])),
       Param("days", "int", "Number of days.", pick([2, 3, 5, 7])),
       Param("unit", "str, optional", "'millimeters' or 'inches'. Default is 'millimeters'.", pick(["inches", "millimeters"]),
             default="millimeters")],
      ["Total rainfall in {city} over the next {days} days in {unit}.", "How much rain will {city} get in the next {days} days?",
       "Rain expected in {city} for {days} days, in {unit}?"], "total the rainfall"),
    ToolSpec("cinema.showtimes", "Film showings in a city.",
      [Param("city", "str", "City name.", pick(["Leeds", "Lyon", "Malmö", "Graz", "Porto"])),
       Param("days", "int", "How many days ahead.", pick([1, 3, 7])),
       Param("screen", "str, optional", "Screen format: '2D', '3D', 'IMAX' or '4DX'. Default is '2D'.", pick(["3D", "IMAX", "4DX"]),
             default="2D")],
      ["Find {screen} showings in {city} for the next {days} days.", "What films are showing in {city} in the next {days} days?",
       "List {screen} screenings near {city} over the coming {days} days."], "list film showings"),
    ToolSpec("food.find_bakery", "Bakeries in a city.",
      [Param("city", "str", "City name.", pick(["Oslo", "Ghent", "Kraków", "Turin", "Utrecht"])),
       Param("dietary", "List[str], optional", "Dietary needs, such as 'gluten-free', 'vegan' or 'nut-free'. Default is [].",
             some(["gluten-free", "vegan", "nut-free"], (1, 2)), lambda v: " and ".join(v), default=[])],
      ["Find a bakery in {city} that sells {dietary} bread.", "Bakeries in {city}?", "Any {dietary} bakeries in {city}?"],
      "find a bakery"),
    ToolSpec("algebra.solve_polynomial", "Solve a polynomial equation.",
      [Param("expression", "str", "The polynomial, equal to zero.", pick(["x^4 - 16", "x^3 + 8", "x^2 + 4", "x^4 - 5x^2 + 4"])),
       Param("solutions", "str, optional", "Which solutions: 'real' or 'all' (complex too). Default is 'real'.",
             pick(["all", "real"]), default="real")],
      ["Find {solutions} solutions of {expression} = 0.", "Solve {expression} = 0.",
       "Give me {solutions} roots of {expression}."], "solve a polynomial"),
    ToolSpec("travel.cheapest_route", "Cheapest route between two cities.",
      [Param("origin", "str", "Start city.", pick(["Lyon", "Bern", "Ljubljana", "Bologna"])),
       Param("destination", "str", "End city.", pick(["Turin", "Vienna", "Munich", "Zagreb"])),
       Param("mode", "str, optional", "'bus', 'train' or 'ferry'. Default is 'train'.", pick(["bus", "train"]), default="train"),
       said_flag("allow_changes", "Whether changing vehicles is allowed.")],
      ["The cheapest way from {origin} to {destination} by {mode}, and changes are fine{allow_changes}.",
       "Cheapest route from {origin} to {destination}?", "Cheapest {mode} from {origin} to {destination}."],
      "find the cheapest route"),
    ToolSpec("architecture.tallest_buildings", "The tallest buildings of a city.",
      [Param("city", "str", "City name.", pick(["Dubai", "Shenzhen", "Chicago", "Melbourne"])),
       Param("sort_by", "str, optional", "'height' or 'year'. Default is 'height'.", pick(["year", "height"]), default="height"),
       Param("limit", "int, optional", "How many buildings. Default is 10.", pick([3, 5, 20]), default=10)],
      ["List the {limit} tallest buildings in {city} sorted by {sort_by}.", "Tallest buildings in {city}.",
       "The tallest buildings of {city}, sorted by {sort_by}."], "list tall buildings"),
    ToolSpec("math_tools.root", "The square root of a number.",
      [Param("number", "float", "The number.", floats(2, 99, 1)),
       Param("decimals", "int, optional", "Decimal places. Default is 2.", pick([4, 6, 8]), default=2)],
      ["Square root of {number} to {decimals} decimal places.", "What is the square root of {number}?"],
      "take a square root"),
    ToolSpec("lodging.hotel_price", "Price of a hotel stay.",
      [Param("hotel", "str", "Hotel name.", pick(["Hotel Aurora", "The Linden", "Casa Azul", "Harbour Inn"])),
       Param("nights", "int", "Number of nights.", ints(1, 9)),
       Param("currency", "str, optional", "'dollars', 'euros' or 'pounds'. Default is 'dollars'.", pick(["euros", "pounds"]),
             default="dollars")],
      ["Price of {nights} nights at {hotel} in {currency}.", "What do {nights} nights at {hotel} cost?",
       "How much, in {currency}, for {nights} nights at {hotel}?"], "price a hotel stay"),
    ToolSpec("tourism.visitor_stats", "Visitors of a site in a year.",
      [Param("site", "str", "The site.", pick(["the Alhambra", "Angkor Wat", "Machu Picchu", "the Acropolis"])),
       Param("year", "int", "The year.", ints(2010, 2023)),
       said_flag("include_countries", "Whether to give the visitors' countries.")],
      ["How many people visited {site} in {year}, and from which countries{include_countries}?",
       "Visitor numbers for {site} in {year}.", "Get the visitors and their countries{include_countries} for {site} in {year}."],
      "report visitor numbers"),
    ToolSpec("fitness.find_classes", "Exercise classes in a city.",
      [Param("activity", "str", "The activity.", pick(["yoga", "pilates", "rowing", "boxing"])),
       Param("city", "str", "City name.", pick(["Porto", "Aarhus", "Bilbao", "Galway"])),
       Param("level", "str, optional", "'beginner', 'intermediate' or 'advanced'. Default is 'intermediate'.",
             pick(["beginner", "advanced", "intermediate"]), default="intermediate")],
      ["Find {level} {activity} classes in {city}.", "Where can I take {activity} classes in {city}?", "Any {activity} class in {city} for {level} students?"],
      "find a class"),
]


def asked_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` rows of the optional rows' lesson (`optional_rows`) on 18 tools of their own, their values
    asked for in passing: a unit beside a number ("a side of 4 feet"), an adjective ("a large brown
    mushroom"), a flag in words ("including seasonality", "and from which countries", "changes are
    fine"), a format ("in the form of a set"), a model or a method by name, a value that happens to
    be the default ("medium") still passed because the request names it."""
    return _worded_rows("asked", ASKED_TOOLS, TOOLS + PHRASED_TOOLS + OPTIONAL_TOOLS + ASKED_TOOLS, n, seed)


# --- rate rows: a rate said in percent is written as the parameter's description asks

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


RATE_TOOLS: list[ToolSpec] = [
    ToolSpec("savings.compound_balance", "Balance of a deposit with compound interest.",
      [Param("deposit", "float", "Amount deposited.", *money(500, 50000)),
       rate("interest_rate", "Annual interest rate as a decimal, e.g. 0.05 for 5%."), Param("years", "int", "Years.", ints(2, 30))],
      ["What will {deposit} be worth after {years} years at {interest_rate} a year?",
       "Balance of a {deposit} deposit after {years} years, interest {interest_rate}?"], "compute a savings balance"),
    ToolSpec("mortgage.total_cost", "Total cost of a mortgage.",
      [Param("amount", "float", "Amount borrowed.", *money(50000, 900000)), rate("annual_rate", "The annual interest rate."),
       Param("term_years", "int", "Term in years.", pick([10, 15, 20, 25, 30]))],
      ["Total cost of a {amount} mortgage over {term_years} years at {annual_rate}?",
       "I borrow {amount} for {term_years} years with an annual rate of {annual_rate}: what do I pay in all?"], "price a mortgage"),
    ToolSpec("demography.project_population", "Project a town's population.",
      [Param("population", "int", "Current population.", ints(2000, 900000)), rate("growth_rate", "Yearly growth rate."),
       Param("years", "int", "Years ahead.", ints(3, 40))],
      ["A town of {population} grows {growth_rate} a year: how many people in {years} years?",
       "Project {population} inhabitants {years} years ahead with {growth_rate} annual growth."], "project a population"),
    ToolSpec("payroll.net_pay", "Pay after income tax.",
      [Param("gross", "float", "Gross pay.", *money(1000, 200000)),
       rate("tax_rate", "Tax rate as a fraction of the gross pay (0.2 is a fifth).")],
      ["What is left of {gross} after {tax_rate} tax?", "Net pay on a gross of {gross} taxed at {tax_rate}?"], "compute net pay"),
    ToolSpec("economics.real_value", "What an amount is worth after years of inflation.",
      [Param("amount", "float", "Amount today.", *money(100, 100000)), rate("inflation_rate", "Annual inflation rate, as a decimal."),
       Param("years", "int", "Years.", ints(2, 25))],
      ["What is {amount} worth in {years} years with {inflation_rate} inflation?",
       "With inflation at {inflation_rate} a year, what will {amount} buy in {years} years?"], "adjust for inflation"),
    ToolSpec("pharmacology.remaining_dose", "Drug left in the body after some hours.",
      [Param("dose_mg", "float", "Dose in milligrams.", pick([50.0, 100.0, 250.0, 500.0]), lambda v: f"{v:g}"),
       rate("elimination_rate", "Fraction of the drug eliminated per hour."), Param("hours", "int", "Hours since the dose.", ints(2, 24))],
      ["How much of a {dose_mg} mg dose is left after {hours} hours if {elimination_rate} is cleared each hour?",
       "{dose_mg} mg taken {hours} hours ago, eliminated at {elimination_rate} per hour: what remains?"], "compute a remaining dose"),
    ToolSpec("microbiology.colony_size", "Size of a bacterial colony after some hours.",
      [Param("initial", "int", "Cells at the start.", ints(100, 10000)), rate("growth_rate", "Growth per hour as a decimal."),
       Param("hours", "int", "Hours.", ints(2, 48))],
      ["Start with {initial} cells growing {growth_rate} per hour: how many after {hours} hours?",
       "Colony of {initial} cells, {growth_rate} hourly growth, {hours} hours later?"], "size a colony"),
    ToolSpec("shop.discounted_price", "Price after a discount.",
      [Param("price", "float", "Price before the discount.", *money(5, 2000, 2)),
       rate("discount", "Discount in percent, e.g. 15 for 15%.", in_percent=True)],
      ["What does a {price} coat cost with {discount} off?", "Take {discount} off {price}."], "apply a discount"),
    ToolSpec("dining.split_bill", "Each person's share of a bill with tip.",
      [Param("total", "float", "Bill total.", *money(20, 600, 2)), Param("people", "int", "Number of people.", ints(2, 12)),
       rate("tip_percent", "Tip in percent of the total.", in_percent=True)],
      ["Split a {total} bill between {people} people with a {tip_percent} tip.",
       "We are {people}, the bill is {total} and we tip {tip_percent}: what does each pay?"], "split a bill"),
    ToolSpec("retail.markup_price", "Selling price from cost and markup.",
      [Param("cost", "float", "Cost of the item.", *money(2, 900, 2)),
       rate("markup", "Markup as a percentage of the cost (25 means 25%).", in_percent=True)],
      ["Selling price of an item costing {cost} with a {markup} markup?", "Mark up {cost} by {markup}."], "price with a markup"),
    ToolSpec("funds.net_return", "Yearly return of a fund after its fee.",
      [Param("amount", "float", "Amount invested.", *money(1000, 250000)),
       rate("expected_return", "Expected yearly return as a decimal."),
       rate("fee_percent", "Yearly management fee in percent.", in_percent=True)],
      ["Invest {amount} expecting {expected_return} a year with a {fee_percent} fee: what do I earn?",
       "Net return on {amount} if the fund makes {expected_return} and charges {fee_percent}?"], "compute a fund's return"),
    ToolSpec("loans.total_interest", "Interest paid over a simple-interest loan.",
      [Param("principal", "float", "Loan amount.", *money(1000, 80000)),
       rate("rate", "Annual interest rate; 4.5% is 0.045."), Param("years", "int", "Years.", ints(1, 10))],
      ["Interest on {principal} borrowed for {years} years at {rate}?", "How much interest on a {principal} loan at {rate} for {years} years?"],
      "total a loan's interest"),
]


def rate_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` requests with a rate said in percent ("4.5%"), written as a fraction (0.045) where the
    description asks for a decimal or a fraction or just says "rate", and as said (4.5) where it asks
    for percent: 9 of the 12 tools want the fraction, one wants both. The sample's loan tool wants its
    rate in percent, and a model trained on it writes 5.0 for 5% whatever the description asks."""
    return _worded_rows("rate", RATE_TOOLS, TOOLS + PHRASED_TOOLS + RATE_TOOLS, n, seed)


# --- case rows: several cases of one request told one by one, a call per case

ORDINALS = ["first", "second", "third", "fourth"]
SPELLED = {2: "two", 3: "three", 4: "four"}


def _clause(params: list[Param], values: dict[str, Any], of: bool) -> str:
    """'radius of 5 and unit of cm' (or 'radius 5 and unit cm'): the values of `params` said with
    their names, which is how a request tells cases apart when no sentence of a template fits."""
    return _say_all([f"{p.name.replace('_', ' ')}{' of' if of else ''} {p.say(values[p.name])}" for p in params])


def _again_query(tool: ToolSpec, varied: list[Param], fixed: dict[str, Any], groups: list[dict[str, Any]], r: random.Random) -> str | None:
    """The first case in one of the tool's own sentences, each further one as "Do the same for
    radius of 10." (BFCL: "… Do the same calculation for an initial investment of $5000 …")."""
    names = {p.name for p in varied} | set(fixed)
    templates = [t for t in tool.templates if set(_PLACEHOLDER.findall(t)) == names]
    if not templates:
        return None
    by_name = {p.name: p for p in tool.params}
    first = r.choice(templates).format(**{n: by_name[n].say(v) for n, v in {**fixed, **groups[0]}.items()})
    of = r.random() < 0.5
    lead = r.choice(["Do the same for {}.", "Then do it again with {}.", "And the same with {}.", "Repeat that for {}."])
    return " ".join([first] + [lead.format(_clause(varied, g, of)) for g in groups[1:]])


def _ordinal_query(tool: ToolSpec, varied: list[Param], fixed: dict[str, Any], groups: list[dict[str, Any]], r: random.Random) -> str:
    """The cases counted and told one by one ("I need to solve a quadratic for three cases: the first
    with a of 2.0 and b of 5.0, the second …"), the values they share said once, sometimes asking
    for a total, which still takes a call per case (BFCL: "the total area of three circles, where the
    first circle has a radius of 5 meters, the second …")."""
    k = len(groups)
    of = r.random() < 0.5
    lead = r.choice(["I need to {p} for {k} cases", "Please {p} {k} times", "There are {k} requests to {p}"])
    cases = [f"the {ORDINALS[j]} {'with ' if of else 'has '}{_clause(varied, g, of)}" for j, g in enumerate(groups)]
    said = lead.format(p=tool.purpose, k=SPELLED[k]) + ": " + ("; " if r.random() < 0.5 else ", ").join(cases) + "."
    if fixed:
        by_name = {p.name: p for p in tool.params}
        said += " " + r.choice(["In every case, {}.", "Use {} for all of them.", "Each time with {}."]).format(
            _clause([by_name[n] for n in fixed], fixed, True))
    return said + r.choice(["", "", " Give me every result.", " What do they come to in total?"])


def case_row(i: int, r: random.Random) -> dict[str, Any] | None:
    """A request for two to four cases of one function, told one after another rather than listed in
    one slot: the first case in a sentence of its own and the others as "Do the same for …"
    (`_again_query`), or the cases counted and told in order, "the first …, the second …"
    (`_ordinal_query`). These are most of BFCL's parallel requests, and a model trained on the
    one-sentence rows answers them with one call. One or two values vary; the required values the
    cases share are said once. None when the tool has no scalar required parameter to vary, a
    required list (whose commas would blur the cases) or no purpose to name it by."""
    pool = TOOLS + PHRASED_TOOLS + RATE_TOOLS
    tool = r.choice(pool)
    required = [p for p in tool.params if "optional" not in p.xtype]
    scalars = [p for p in required if _scalar(p)]
    if not scalars or len(scalars) < len(required) or not tool.purpose:
        return None
    k = r.choice([2, 2, 3, 3, 4])
    varied = r.sample(scalars, min(len(scalars), r.choice([1, 1, 2])))
    fixed = {p.name: p.sample(r) for p in required if p not in varied}
    columns = [_distinct(p, k, list(fixed.values()), r) for p in varied]
    if min(map(len, columns)) < k:
        return None
    groups = [{p.name: col[j] for p, col in zip(varied, columns)} for j in range(k)]
    query = _again_query(tool, varied, fixed, groups, r) if r.random() < 0.4 else None
    query = query or _ordinal_query(tool, varied, fixed, groups, r)
    calls = [Call(tool.name, {p.name: g.get(p.name, fixed.get(p.name)) for p in required}) for g in groups]
    tools = [tool, *r.sample([t for t in pool if t is not tool], r.randint(0, 2))]
    r.shuffle(tools)
    reasoning = (f"The user tells {k} cases of one request, so I call `{tool.name}` once for each case: "
                 + ", ".join(format_python_call(c) for c in calls) + ".")
    return {"id": f"case-{i}", "query": query, "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([c.to_dict() for c in calls], ensure_ascii=False), "reasoning": reasoning}


def case_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` case rows (`case_row`), generated apart from the bundled sample, which stays as it is."""
    return _until(n, case_row, random.Random(f"case/{seed}"))


# --- joint rows: one call whose values are said together, "x and y as 4 and 5"

def joint_row(i: int, r: random.Random) -> dict[str, Any] | None:
    """One request whose required values are said in one run of "and"s, answered with one call: the
    parameters and their values each joined ("with a and b as 12 and 18"), or every value said with
    its parameter's name ("with amount of 12.5, from currency of EUR and to currency of USD"). Two
    values of one parameter ask for two calls (the parallel and case rows); values of two parameters
    ask for one, and a model trained on the case rows alone splits BFCL's "the lengths of the other
    two sides as 4 and 5" in two. None when the tool has fewer than two required parameters, a
    required one that is not a scalar, or no purpose to name it by."""
    pool = TOOLS + PHRASED_TOOLS + RATE_TOOLS
    tool = r.choice(pool)
    required = [p for p in tool.params if "optional" not in p.xtype]
    if len(required) < 2 or not all(map(_scalar, required)) or not tool.purpose:
        return None
    values = {p.name: p.sample(r) for p in required}
    if r.random() < 0.5:
        said = (_say_all([p.name.replace("_", " ") for p in required]) + r.choice([" as ", " of ", " set to "])
                + _say_all([p.say(values[p.name]) for p in required]))
    else:
        said = _clause(required, values, r.random() < 0.5)
    lead = r.choice(["I need to {p} with {s}.", "Please {p} given {s}.", "Can you {p} for {s}?", "{P}, with {s}."])
    query = lead.format(p=tool.purpose, P=tool.purpose[0].upper() + tool.purpose[1:], s=said)
    call = Call(tool.name, values)
    tools = [tool, *r.sample([t for t in pool if t is not tool], r.randint(0, 2))]
    r.shuffle(tools)
    reasoning = (f"The values said together belong to different parameters of one request, so I call "
                 f"`{tool.name}` once: {format_python_call(call)}.")
    return {"id": f"joint-{i}", "query": query, "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([call.to_dict()], ensure_ascii=False), "reasoning": reasoning}


def joint_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` joint rows (`joint_row`), generated apart from the bundled sample, which stays as it is."""
    return _until(n, joint_row, random.Random(f"joint/{seed}"))


def generate(n: int = 300, seed: int = 0, reasoning_share: float = 0.5) -> list[dict[str, Any]]:
    r = random.Random(seed)
    return [make_row(i, r, r.random() < reasoning_share) for i in range(n)]


# what `funreason sample --kind` writes: the bundled sample's mixed shapes, or one of the shapes
# generated apart from it (each with ids of its own, so that files of two kinds can be joined)
KINDS: dict[str, Callable[[int, int], list[dict[str, Any]]]] = {
    "mixed": generate, "parallel": parallel_rows, "no-fit": no_fit_rows, "phrased": phrased_rows, "optional": optional_rows,
    "asked": asked_rows, "rate": rate_rows, "multi": multi_rows, "case": case_rows, "joint": joint_rows,
}


def sample_path() -> Path:
    """The bundled sample file (installed with the package)."""
    return Path(str(resources.files("funreason").joinpath("data/sample_xlam.jsonl")))


def write_sample(path: str | Path, n: int = 300, seed: int = 0, kind: str = "mixed") -> int:
    """Write `n` rows of `kind` (all or nothing: a failed write leaves no partial file)."""
    from funreason.formats.jsonl import write_jsonl_atomic

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    rows = KINDS[kind](n, seed)
    write_jsonl_atomic(Path(path), rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(sample_path()))
    ap.add_argument("-n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=list(KINDS), default="mixed")
    a = ap.parse_args()
    print(f"wrote {write_sample(a.out, a.n, a.seed, a.kind)} rows to {a.out}")


if __name__ == "__main__":
    main()
