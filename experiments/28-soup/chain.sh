# The twenty-eighth try: the twenty-fifth try's run again (same data, seed 0, 480 steps), keeping the
# checkpoints of steps 320-440, then the mean of its final model and the twenty-seventh try's
# (900 case rows, same mix and seed), scored greedy; then the mean of its own tail.
set -e
cd "$(dirname "$0")/../.."
B=.venv/bin/funreason
D=runs/e28
CATS=simple_python,multiple,parallel,parallel_multiple,irrelevance
echo "[$(date +%T)] start"
.venv/bin/python bench/results_fromscratch/run.py --save-steps 40 --keep 5 --out $D
test -f $D/run32/final/config.json
echo "[$(date +%T)] mean of the twenty-fifth (again) and twenty-seventh tries' models"
$B model average $D/run32/final runs/e27/run32/final --out $D/soup/final
$B eval bfcl --model $D/soup/final --guided --categories $CATS --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup-greedy/bfcl
echo "[$(date +%T)] mean of the run's tail"
$B model average $D/run32/checkpoint-400 $D/run32/checkpoint-440 $D/run32/final --out $D/tail/final
$B eval bfcl --model $D/tail/final --guided --categories $CATS --limit 100 --max-tokens 192 --batch 24 --out $D/eval/tail-greedy/bfcl
echo "[$(date +%T)] done"
# What ran after it: the tail mean above stopped (the checkpoints carry the model's own chat template,
# the final model FunReason's, and `model average` refuses to mix them); the soup searched instead:
# .venv/bin/funreason eval bfcl --model runs/e28/soup/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple --limit 100 --max-tokens 192 --batch 24 --out runs/e28/eval/soup-b4/bfcl
