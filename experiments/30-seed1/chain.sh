#!/usr/bin/env bash
# The thirtieth try, from the checkout root: a third soup member. The twenty-seventh try's recipe
# (bench/results_fromscratch/run.py with 900 case rows) again with data order 1, then means of it
# with the twenty-fifth (runs/e28/run32/final) and twenty-seventh (runs/e27/run32/final) tries'
# models, screened greedy on simple_python 101-200 (entries the targets do not count); only a
# mean that beats the twenty-eighth try's mean there (63) is scored on the first 100 entries.
set -euo pipefail
F=.venv/bin/funreason
D=runs/e30
.venv/bin/python bench/results_fromscratch/run.py --seed 1 --case 900 --save-steps 40 --keep 2 --out $D
$F model average runs/e28/run32/final runs/e27/run32/final $D/run32/final --out $D/soup3/final
$F model average runs/e27/run32/final $D/run32/final --out $D/soup27+30/final
for m in run32 soup3 soup27+30; do
  $F eval bfcl --model $D/$m/final --guided --categories simple_python --skip 100 --limit 100 --max-tokens 192 --batch 24 --out runs/dev/e30-$m/bfcl
done
# None beat 63 (the run 57, the three-way mean 57, the two-seed mean 58: dev-screen.json), so
# none was scored on the first 100 entries; had one, this is the line that would have run:
# $F eval bfcl --model $D/<mean>/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/<mean>-b4/bfcl
