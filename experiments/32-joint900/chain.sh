#!/bin/bash
# The thirty-second try: the twenty-fifth try's recipe with 900 joint rows instead of 300 (the
# twenty-fourth try's joint rows reached 74 on simple_python alone), as a soup member beside the
# twenty-fifth and twenty-seventh tries' models; screened greedy on simple_python 101-200 first.
set -e
cd "$(dirname "$0")/../.."
.venv/bin/python bench/results_fromscratch/run.py --joint 900 --save-steps 40 --keep 2 --out runs/e31
.venv/bin/funreason model average runs/e28/run32/final runs/e27/run32/final runs/e31/run32/final --out runs/e31/soup3/final
S="--guided --categories simple_python --skip 100 --limit 100 --max-tokens 192 --batch 24"
.venv/bin/funreason eval bfcl --model runs/e31/soup3/final $S --out runs/dev/e31-soup3/bfcl
.venv/bin/funreason model average runs/e28/run32/final runs/e31/run32/final --out runs/e31/soup25+31/final
.venv/bin/funreason eval bfcl --model runs/e31/soup25+31/final $S --out runs/dev/e31-soup25+31/bfcl
.venv/bin/funreason eval bfcl --model runs/e31/run32/final $S --out runs/dev/e31-run32/bfcl
echo CHAIN DONE
