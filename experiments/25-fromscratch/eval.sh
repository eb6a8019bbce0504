set -e
cd /work/main
B=.venv/bin/funreason
M=runs/e25/run32/final
while kill -0 4941 2>/dev/null; do sleep 20; done
test -f $M/config.json
echo "[$(date +%T)] eval greedy"
$B eval bfcl --model $M --guided --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out runs/e25/eval/greedy/bfcl
echo "[$(date +%T)] eval beams 4"
$B eval bfcl --model $M --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out runs/e25/eval/b4/bfcl
echo "[$(date +%T)] done"
