"""Generator of FunReason's bundled sample: synthetic xLAM-style function-calling rows.

Written by this project (no row comes from BFCL, which stays held out, and no tool shares a name
with a BFCL function: a shared name would let a model trained on the sample meet a BFCL entry's
function as an old friend, overstating what training taught). Many tools across domains
and query shapes: simple, multiple (distractor tools), parallel (one function several times),
parallel-multiple, optional parameters used or left out, lists, dicts, negative and float
numbers, unicode, and irrelevant queries whose answer is a statement. A share of the rows carry a
`reasoning` field written the way a teacher would explain the call.

Nine more shapes are generated apart from the sample, so that it stays as it is (`KINDS`,
`funreason sample --kind`): one sentence naming several values, one call each (`parallel_rows`); one
offered function that cannot serve the request, answered without a call (`no_fit_rows`); values
said in everyday words and written as the description asks (`phrased_rows`); an optional parameter
passed when the request names its value and left out when not (`optional_rows`, and `asked_rows`
on other tools); a rate said in percent written as a fraction or as said, as its description asks
(`rate_rows`); several calls in one sentence, a call per pair of two listed values or per request
(`multi_rows`); two to four cases told one after another, a call per case (`case_rows`); the values
of several parameters said together, one call (`joint_rows`). The
worded kinds have tools of their own, under the same rule: no BFCL name.

`funreason sample --out FILE` regenerates the bundled `sample_xlam.jsonl` (`funreason.data.bundled`).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple

from funreason.calls import format_python_call
from funreason.data.synth.catalog import ASKED_TOOLS, OPTIONAL_TOOLS, PHRASED_TOOLS, RATE_TOOLS, TOOLS
from funreason.data.synth.tools import Param, ToolSpec
from funreason.schema import Call

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
STATEMENT = "None of the available functions can {purpose}; they can only {offered}. Please provide a suitable tool."


def row(row_id: Any, query: str, tools: list[ToolSpec], calls: list[Call], reasoning: str) -> dict[str, Any]:
    """One xLAM-style row: tools and answers as JSON strings, as xLAM-60k writes them."""
    return {"id": row_id, "query": query, "tools": json.dumps([t.xlam() for t in tools], ensure_ascii=False),
            "answers": json.dumps([c.to_dict() for c in calls], ensure_ascii=False), "reasoning": reasoning}


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
    return row(f"parallel-{i}", template.format(**say), tools, calls, reasoning)


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
    return row(f"multi-{i}", query, tools, calls, reasoning)


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
    return row(row_id, template.format(**said), tools, [call], _explain_phrased(tool, call, said))


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


def optional_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` requests that name the value of an optional parameter ("using the newton method", "in
    Spanish", "audiobooks", "with the median") and so pass it, or name none and leave them out.
    A model trained on requests that rarely set optional parameters drops them even when asked;
    BFCL's simple requests often set one. Beside them, a city asked as a name only stays a name."""
    return _worded_rows("optional", OPTIONAL_TOOLS, TOOLS + PHRASED_TOOLS + OPTIONAL_TOOLS, n, seed)


# --- asked rows: the optional rows' lesson on tools of their own, asked for the way requests ask in passing


def asked_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` rows of the optional rows' lesson (`optional_rows`) on 18 tools of their own, their values
    asked for in passing: a unit beside a number ("a side of 4 feet"), an adjective ("a large brown
    mushroom"), a flag in words ("including seasonality", "and from which countries", "changes are
    fine"), a format ("in the form of a set"), a model or a method by name, a value that happens to
    be the default ("medium") still passed because the request names it."""
    return _worded_rows("asked", ASKED_TOOLS, TOOLS + PHRASED_TOOLS + OPTIONAL_TOOLS + ASKED_TOOLS, n, seed)


# --- rate rows: a rate said in percent is written as the parameter's description asks


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
    return row(f"case-{i}", query, tools, calls, reasoning)


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
    return row(f"joint-{i}", query, tools, [call], reasoning)


def joint_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` joint rows (`joint_row`), generated apart from the bundled sample, which stays as it is."""
    return _until(n, joint_row, random.Random(f"joint/{seed}"))


def generate(n: int = 300, seed: int = 0, reasoning_share: float = 0.5) -> list[dict[str, Any]]:
    r = random.Random(seed)
    return [make_row(i, r, r.random() < reasoning_share) for i in range(n)]


class Kind(NamedTuple):
    """A row kind `funreason sample --kind` writes: how to make `n` rows from a seed, one line saying
    what they are, and the BFCL entries it was designed from (`designed_from`: `category_lo-hi` ranges
    of BFCL ids, or single ids). Those entries are dev in `evaluate/bfcl_splits.json`; no kind may
    name a test entry (tests/test_synth.py checks it), so a figure on test entries is never one the
    generator was shaped on."""

    make: Callable[[int, int], list[dict[str, Any]]]
    about: str
    designed_from: tuple[str, ...] = ()


def designed_ids(kind: "Kind") -> list[str]:
    """The BFCL ids a kind was designed from, its ranges written out."""
    ids = []
    for item in kind.designed_from:
        head, _, span = item.rpartition("_")
        if "-" in span:
            lo, hi = map(int, span.split("-"))
            ids += [f"{head}_{i}" for i in range(lo, hi + 1)]
        else:
            ids.append(item)
    return ids


# what `funreason sample --kind` writes: the bundled sample's mixed shapes, or one of the shapes
# generated apart from it (each with ids of its own, so that files of two kinds can be joined);
# the CLI help and the docs table are made from these lines
# designed_from, per the contamination audit of eb7bac0 (docs/data.md): the entries whose misses or
# wording each kind was written from (BFCL ids, which start at 0; "entries 1–100" are ids 0–99)
KINDS: dict[str, Kind] = {
    "mixed": Kind(generate, "the bundled sample's shapes: simple, multiple, parallel, parallel-multiple, irrelevant",
                  ("simple_python_1", "simple_python_3-6", "parallel_62", "parallel_multiple_5")),
    "parallel": Kind(parallel_rows, "several values in one sentence, one call each", ("parallel_0-99",)),
    "no-fit": Kind(no_fit_rows, "one offered function that cannot serve the request; the answer has no call", ("irrelevance_0-99",)),
    "phrased": Kind(phrased_rows, "values said in everyday words ('2.5 million', 'Denver'), written as the description asks",
                    ("simple_python_0-99",)),
    "optional": Kind(optional_rows, "an optional parameter passed when the request names its value, left out when not",
                     ("simple_python_0-99",)),
    "asked": Kind(asked_rows, "the same on 18 other tools, the value asked for in passing ('a large mushroom', 'including seasonality')",
                  ("simple_python_0-99",)),
    "rate": Kind(rate_rows, "a rate said in percent ('4.5%'), written as 0.045 or 4.5 as the description asks", ("simple_python_0-299",)),
    "multi": Kind(multi_rows, "a call for every pair of two listed values, or two or three requests said as one",
                  ("parallel_0-99", "parallel_multiple_0-99")),
    "case": Kind(case_rows, "two to four cases told one after another ('the first ..., the second ...'), a call each",
                 ("parallel_0-99", "simple_python_0-99")),
    "joint": Kind(joint_rows, "values of several parameters said together ('a and b as 12 and 18'), one call", ("simple_python_0-99",)),
}


def kinds_help() -> str:
    """The kinds and what each writes, one clause each (the CLI's --kind help)."""
    return "; ".join(f"{name}: {kind.about}" for name, kind in KINDS.items()) + "."


def write_sample(path: str | Path, n: int = 300, seed: int = 0, kind: str = "mixed") -> int:
    """Write `n` rows of `kind` (all or nothing: a failed write leaves no partial file)."""
    from funreason.formats.jsonl import write_jsonl_atomic

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    rows = KINDS[kind].make(n, seed)
    write_jsonl_atomic(Path(path), rows)
    return len(rows)


