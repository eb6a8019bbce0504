set -e
cd /work/main
echo "[$(date +%T)] eval L beams 4"
.venv/bin/funreason eval bfcl --model runs/e26/L/final --guided --beams 4 --categories simple_python,parallel,parallel_multiple --limit 100 --max-tokens 192 --batch 24 --out runs/e26/eval/L-b4/bfcl
echo "[$(date +%T)] done"
