set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e24
echo "[$(date +%T)] average"
$B model average runs/e20/soup/final runs/e23/soup/final --out $D/mid/final
echo "[$(date +%T)] eval simple"
$B eval bfcl --model $D/mid/final --guided --beams 4 --categories simple_python --limit 100 --max-tokens 192 --batch 24 --out $D/eval/mid-b4/bfcl
echo "[$(date +%T)] done"
