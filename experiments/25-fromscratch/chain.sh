set -e
cd /work/main
echo "[$(date +%T)] start"
.venv/bin/python bench/results_fromscratch/run.py   # it ran as runs/e25/run.py, the same file
echo "[$(date +%T)] eval"
.venv/bin/funreason eval bfcl --model runs/e25/run32/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out runs/e25/eval/b4/bfcl
echo "[$(date +%T)] done"
