# The twenty-seventh try: the twenty-fifth try's run with 900 case rows instead of 300, then greedy scoring.
set -e
cd /work/main
B=.venv/bin/funreason
M=runs/e27/run32/final
echo "[$(date +%T)] start"
.venv/bin/python bench/results_fromscratch/run.py --case 900 --out runs/e27
test -f $M/config.json
echo "[$(date +%T)] eval greedy"
$B eval bfcl --model $M --guided --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out runs/e27/eval/greedy/bfcl
echo "[$(date +%T)] done"
