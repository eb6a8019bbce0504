"""The synthetic generator (`funreason.data.synth`, `funreason sample --kind`): every kind's rows say
what they call, carry ids of their own, and leave the bundled sample as it is."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from funreason.fit import check_calls
from funreason.formats import Reader
from funreason.data.mix import bfcl_index, bfcl_overlap
from conftest import SAMPLE, funreason as run


def test_one_sentence_parallel_rows_name_every_value_once_and_leave_the_sample_as_it_is():
    # BFCL's parallel entries ask for several values in one sentence; these rows teach that phrasing.
    # Each must be answerable from its sentence alone: one function, one call per value named in the
    # query, the other arguments equal across the calls, and nothing shared with BFCL.
    from funreason.formats import example_from_row
    from funreason.data.synth.kinds import generate, parallel_rows

    queries, names = bfcl_index()
    rows = parallel_rows(200)
    assert parallel_rows(200) == rows and parallel_rows(200, seed=1) != rows
    exs = [example_from_row(r, f"p:{i}") for i, r in enumerate(rows)]
    assert len({e.id for e in exs} | {e.id for e in Reader(SAMPLE)}) == len(exs) + 300  # ids apart from the sample's
    assert [e.id for e in exs if bfcl_overlap(e, queries, names)] == []
    for e in exs:
        assert 2 <= len(e.calls) <= 4 and len({c.name for c in e.calls}) == 1, e.query
        assert check_calls(e.calls, e.tools) is None, e.query
        keys = set(e.calls[0].arguments)
        assert all(set(c.arguments) == keys for c in e.calls), e.query
        varied = [k for k in keys if len({json.dumps(c.arguments[k]) for c in e.calls}) > 1]
        assert len(varied) == 1, e.query  # one parameter takes the list, every value distinct
        assert len({json.dumps(c.arguments[varied[0]]) for c in e.calls}) == len(e.calls), e.query
        for c in e.calls:
            for v in c.arguments.values():
                said = ({True: ("yes", "on"), False: ("no", "off")}[v] if isinstance(v, bool)
                        else (", ".join(map(str, v)),) if isinstance(v, list) else (str(v),))
                assert any(x in e.query for x in said), (e.query, v)
        assert " and " in e.query and "Also:" not in e.query
    # the bundled sample is generated apart and stays byte for byte what it was
    assert [json.dumps(r, ensure_ascii=False) for r in generate(300, seed=0)] == SAMPLE.read_text(encoding="utf-8").splitlines()


def test_one_function_no_fit_rows_offer_one_function_that_cannot_serve_the_request():
    # BFCL's irrelevance entries offer one function beside a short request it cannot serve. Each row
    # must be a true no-fit: the request is one the generator writes for a tool of another family
    # than the offered one, and the answer makes no call.
    import re

    from funreason.data.synth.catalog import TOOLS
    from funreason.data.synth.kinds import no_fit_rows, parallel_rows

    def family(name: str) -> str:
        return name.split(".")[0]

    def asked_by(query: str) -> set[str]:  # the tools one of whose templates reads as this query
        return {t.name for t in TOOLS for tpl in t.templates
                if re.fullmatch(re.sub(r"\\\{\w+\\\}", "(.+)", re.escape(tpl)), query)}

    exs = generated(no_fit_rows, 200, "n", {e.id for e in Reader(SAMPLE)} | {r["id"] for r in parallel_rows(200)})
    for e in exs:
        assert len(e.tools) == 1 and e.is_statement and e.answer, e.query
        asked = asked_by(e.query)
        assert asked and family(e.tools[0].name) not in {family(n) for n in asked}, (e.query, e.tools[0].name)
    assert len({e.tools[0].name for e in exs}) > 20 and len({e.query for e in exs}) > 150  # varied, not one row again


def test_phrased_rows_write_values_said_in_everyday_words_as_the_description_asks():
    # BFCL simple states values as people do ("5 ft 10 in", "213 million", "Los Angeles" for a
    # "City, State" parameter); these rows teach writing them as the function asks. Each conversion
    # is checked here against the query by a rule of the test's own, not the generator's.
    import re

    from funreason.data.synth.kinds import no_fit_rows, parallel_rows, phrased_rows

    exs = generated(phrased_rows, 300, "ph", {e.id for e in Reader(SAMPLE)} | {r["id"] for r in parallel_rows(50) + no_fit_rows(50)})
    converted, checked = 0, Counter()
    for e in exs:
        assert len(e.calls) == 1 and check_calls(e.calls, e.tools) is None, e.query
        call = e.calls[0]
        tool = next(t for t in e.tools if t.name == call.name)
        literal = all(str(v) in e.query for v in call.arguments.values() if not isinstance(v, (bool, list)))
        converted += not literal
        for name, v in call.arguments.items():
            desc = tool.parameters["properties"][name]["description"]
            if "City and state" in desc:
                city, state = v.rsplit(", ", 1)
                assert city in e.query and re.fullmatch(r"[A-Z]{2}", state) and v not in e.query, (e.query, v)
            elif "fraction between 0 and 1" in desc:
                assert 0 < v < 1 and f"{round(v * 100)}%" in e.query, (e.query, v)
            elif "in inches" in desc:
                feet, inches = map(int, re.search(r"(\d+) ft (\d+) in", e.query).groups())
                assert v == 12 * feet + inches, (e.query, v)
            elif "in farads" in desc:
                m, prefix = re.search(r"([\d.]+)([µnm])F", e.query).groups()
                assert abs(v - float(m) * {"µ": 1e-6, "n": 1e-9, "m": 1e-3}[prefix]) < 1e-15, (e.query, v)
            elif "inhabitants" in desc:
                m, word = re.search(r"([\d.]+) (thousand|million|billion)", e.query).groups()
                assert v == round(float(m) * {"thousand": 1e3, "million": 1e6, "billion": 1e9}[word]), (e.query, v)
            elif isinstance(v, bool):
                assert v is True and f"{name}=" not in e.query and f"{name}:" not in e.query, (e.query, name)  # said in words, not as a setting
            else:
                continue
            checked[name] += 1
        for name in set(tool.parameters["properties"]) - set(call.arguments):  # left out: optional, and unsaid
            assert name not in tool.parameters.get("required", []), (e.query, name)
    assert converted > 200, converted  # most rows need a value written otherwise than the query says it
    assert set(checked) >= {"destination", "response_rate", "height_in", "capacitance", "population", "express"}, checked
    assert len({e.query for e in exs}) > 250


@pytest.mark.parametrize("kind", ["optional", "asked"])
def test_optional_rows_pass_an_optional_parameter_exactly_when_the_request_names_its_value(kind):
    # BFCL simple's requests often name an optional parameter's value ("using the simpson method",
    # "in inches"); a model that has seldom seen one passed leaves it out. These rows (and the asked
    # rows, the same lesson on other tools) pass one when the request names it and leave it out when
    # not; the test checks that by a rule of its own: a passed value is in the request, a left-out
    # one's other options (quoted in its description) are not.
    import re

    from funreason.data.synth.kinds import KINDS, optional_rows, phrased_rows

    others = {e.id for e in Reader(SAMPLE)} | {r["id"] for r in phrased_rows(50)}
    if kind == "asked":
        others |= {r["id"] for r in optional_rows(300)}
    exs = generated(KINDS[kind].make, 300, kind, others)
    passed = left_out = 0
    for e in exs:
        assert len(e.calls) == 1 and check_calls(e.calls, e.tools) is None, e.query
        call = e.calls[0]
        tool = next(t for t in e.tools if t.name == call.name)
        props, required = tool.parameters["properties"], set(tool.parameters.get("required", []))
        query = e.query.lower()
        for name in set(props) - required:
            desc = props[name]["description"]
            default = re.search(r"Default is (.+?)\.?$", desc)
            options = set(re.findall(r"'([^']+)'", desc)) - {re.sub(r"[\[\]']", "", default.group(1)) if default else ""}
            if name in call.arguments:
                passed += 1
                v = call.arguments[name]
                if isinstance(v, str):
                    assert v.lower() in query, (e.query, name, v)
                elif isinstance(v, list):
                    assert all(x.lower() in query for x in v), (e.query, name, v)
                elif not isinstance(v, bool):
                    assert str(v) in query, (e.query, name, v)
            else:
                left_out += 1
                assert not [o for o in options if o.lower() in query], (e.query, name, options)
        if call.name == "music.concerts_in":  # asked as a name only: no state added
            assert "," not in call.arguments["city"] and call.arguments["city"] in e.query
    least = {"optional": 150, "asked": 120}[kind]  # the asked tools have fewer optional parameters each
    assert passed > least and left_out > least, (passed, left_out)
    assert len({e.query for e in exs}) > 200


def test_rate_rows_write_a_rate_said_in_percent_as_its_description_asks():
    # BFCL's rates are mostly fractions ("The annual interest rate." wants 0.05 for "5%"), and a model
    # trained on the sample's loan tool ("in percent") writes 5.0 whatever the description says. The
    # test's own rule: a description that says percent (and not decimal) takes the number as said,
    # any other rate takes it divided by 100; amounts said as "$12,500" are written as numbers.
    import re

    from funreason.data.synth.kinds import asked_rows, phrased_rows, rate_rows

    others = {e.id for e in Reader(SAMPLE)} | {r["id"] for r in phrased_rows(50) + asked_rows(50)}
    exs = generated(rate_rows, 300, "rate", others)
    as_said = as_fraction = 0
    for e in exs:
        assert len(e.calls) == 1 and check_calls(e.calls, e.tools) is None, e.query
        call = e.calls[0]
        props = next(t for t in e.tools if t.name == call.name).parameters["properties"]
        said = iter(float(x) for x in re.findall(r"([\d.]+)%", e.query))  # in the parameters' order, as the templates say them
        for name, v in call.arguments.items():
            desc = props[name]["description"].lower()
            if re.search(r"rate|percent|fraction|decimal|return", desc):  # a rate, said "4.5%" in the query
                wants_percent = "percent" in desc and "decimal" not in desc
                x = next(said)
                assert (v == x) if wants_percent else abs(v - x / 100) < 1e-12, (e.query, name, v)
                as_said += wants_percent
                as_fraction += not wants_percent
            elif isinstance(v, float) and f"${v:,.0f}" not in e.query and f"${v:,.2f}" not in e.query:
                assert f"{v:g}" in e.query, (e.query, name, v)
    assert as_fraction > 150 and as_said > 60, (as_fraction, as_said)  # both lessons, the fraction the commoner
    assert len({e.query for e in exs}) > 250


def test_multi_rows_call_once_for_every_pair_or_every_request_said_in_one_sentence():
    # BFCL's parallel entries ask for every pair of two listed values ("Lakers and Bulls in 2018 and
    # 2020": four calls) or for two requests said as one ("in Oslo for 3 nights and in Lima for 5").
    # The test's own rule: one function, distinct calls, every value said in the query, and where two
    # arguments vary together over all their pairs, the calls are exactly those pairs.
    from itertools import product

    from funreason.data.synth.kinds import multi_rows, parallel_rows, rate_rows

    exs = generated(multi_rows, 300, "multi", {e.id for e in Reader(SAMPLE)} | {r["id"] for r in parallel_rows(50) + rate_rows(50)})
    crossed = paired = 0
    for e in exs:
        assert len(e.calls) >= 2 and check_calls(e.calls, e.tools) is None, e.query
        assert len({c.name for c in e.calls}) == 1 and len({json.dumps(c.arguments, sort_keys=True) for c in e.calls}) == len(e.calls)
        for c in e.calls:
            assert all(str(v) in e.query for v in c.arguments.values() if not isinstance(v, bool)), (e.query, c.arguments)
        varying = [k for k in e.calls[0].arguments if len({json.dumps(c.arguments[k]) for c in e.calls}) > 1]
        columns = [sorted({json.dumps(c.arguments[k]) for c in e.calls}) for k in varying]
        if len(varying) == 2 and len(e.calls) == len(columns[0]) * len(columns[1]):
            crossed += 1
            assert {tuple(json.dumps(c.arguments[k]) for k in varying) for c in e.calls} == set(product(*columns)), e.query
        else:
            paired += 1
            # two requests joined by a bare "and", as BFCL's are; three listed with commas
            assert (len(e.calls), ", and " in e.query) in ((2, False), (3, True)) and " and " in e.query, e.query
    assert crossed > 100 and paired > 100, (crossed, paired)
    assert len({e.query for e in exs}) > 280


def test_case_rows_call_once_for_every_case_told_one_after_another():
    # Most of BFCL's parallel requests tell their cases one by one ("the first circle has a radius of
    # 5, the second …", "Do the same calculation for …"), and a model trained on one-sentence lists
    # answers them with one call. The test's own rule: one function, a call for every case the query
    # counts (its last ordinal, or one more than its "same"/"again" follow-ups), distinct calls, and
    # every argument said in the query as its tool says it.
    from funreason.data.synth.catalog import PHRASED_TOOLS, RATE_TOOLS, TOOLS
    from funreason.data.synth.kinds import case_rows, multi_rows, parallel_rows

    spec = {t.name: t for t in TOOLS + PHRASED_TOOLS + RATE_TOOLS}
    exs = generated(case_rows, 300, "case", {e.id for e in Reader(SAMPLE)} | {r["id"] for r in parallel_rows(50) + multi_rows(50)})
    told = counted = 0
    for e in exs:
        assert 2 <= len(e.calls) <= 4 and check_calls(e.calls, e.tools) is None, e.query
        assert len({c.name for c in e.calls}) == 1 and len({json.dumps(c.arguments, sort_keys=True) for c in e.calls}) == len(e.calls)
        params = {p.name: p for p in spec[e.calls[0].name].params}
        for c in e.calls:
            assert all(params[k].say(v) in e.query for k, v in c.arguments.items()), (e.query, c.arguments)
        ordinals = [w for w in ("first", "second", "third", "fourth") if f"the {w} " in e.query]
        if ordinals:
            counted += 1
            assert len(ordinals) == len(e.calls), e.query
        else:
            told += 1
            follow_ups = sum(e.query.count(w) for w in ("Do the same for", "again with", "the same with", "Repeat that for"))
            assert follow_ups + 1 == len(e.calls), e.query
    assert told > 60 and counted > 150, (told, counted)
    assert len({e.query for e in exs}) == len(exs)


def test_joint_rows_call_once_with_every_value_said_together():
    # The counterpart of the case rows: values of several parameters said in one run of "and"s
    # ("the other two sides as 4 and 5") ask for one call, not one per value. The test's own rule:
    # one call, every required parameter passed, every value said as its tool says it, joined by "and".
    from funreason.data.synth.catalog import PHRASED_TOOLS, RATE_TOOLS, TOOLS
    from funreason.data.synth.kinds import case_rows, joint_rows

    spec = {t.name: t for t in TOOLS + PHRASED_TOOLS + RATE_TOOLS}
    exs = generated(joint_rows, 300, "joint", {e.id for e in Reader(SAMPLE)} | {r["id"] for r in case_rows(50)})
    for e in exs:
        assert len(e.calls) == 1 and check_calls(e.calls, e.tools) is None, e.query
        params = {p.name: p for p in spec[e.calls[0].name].params}
        assert set(e.calls[0].arguments) == {n for n, p in params.items() if "optional" not in p.xtype}, e.query
        assert all(params[k].say(v) in e.query for k, v in e.calls[0].arguments.items()), (e.query, e.calls[0].arguments)
        assert " and " in e.query
    assert len({e.calls[0].name for e in exs}) > 30 and len({e.query for e in exs}) == len(exs)


def generated(make, n: int, tag: str, others: set[str]) -> list:
    """`make(n)`'s rows as examples, after what every generated kind must hold: the same rows for the
    same seed and others for another, ids of their own (none of `others`), nothing of BFCL's."""
    from funreason.formats import example_from_row

    queries, names = bfcl_index()
    rows = make(n)
    assert make(n) == rows and make(n, seed=1) != rows
    exs = [example_from_row(r, f"{tag}:{i}") for i, r in enumerate(rows)]
    assert len({e.id for e in exs}) == n and not {e.id for e in exs} & others
    assert [e.id for e in exs if bfcl_overlap(e, queries, names) or {t.name for t in e.tools} & names] == []
    return exs


def test_sample_generator_reproduces_the_bundled_file_and_writes_each_kind(tmp_path):
    from funreason.data.synth.kinds import phrased_rows

    run("sample", "--out", tmp_path / "s.jsonl")
    assert (tmp_path / "s.jsonl").read_bytes() == SAMPLE.read_bytes()
    run("sample", "--out", tmp_path / "p.jsonl", "--kind", "phrased", "-n", "40", "--seed", "3")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == phrased_rows(40, 3) and rows[0]["id"] == "phrased-0"


def test_every_kind_says_which_bfcl_entries_it_was_designed_from_and_none_is_test():
    from funreason.data.synth.kinds import KINDS, designed_ids
    from funreason.evaluate.splits import load_registry

    registry = load_registry()
    for name, kind in KINDS.items():
        ids = designed_ids(kind)
        assert ids, f"kind {name} does not say which BFCL entries it was designed from"
        test = [i for i in ids if registry.split_of(i) != "dev"]
        assert not test, f"kind {name} names test entries {test[:5]}: they would have to move to dev"
    assert "simple_python_345" not in designed_ids(KINDS["rate"]) and len(designed_ids(KINDS["rate"])) == 300
