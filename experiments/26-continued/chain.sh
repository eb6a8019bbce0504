set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e26
START=runs/e25/run32/final
MIX="runs/e25/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
echo "[$(date +%T)] sampling"
$B sample --kind case -n 400 --seed 1 --out $D/case400_s1.jsonl
$B sample --kind joint -n 150 --seed 1 --out $D/joint150_s1.jsonl
$B sample --kind asked -n 100 --seed 5 --out $D/asked100_s5.jsonl
for f in case400_s1 joint150_s1 asked100_s5; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
shuf -n 400 --random-source=<(rnd replay7) "$MIX" > $D/replay400u7.jsonl
cat $D/replay400u7.jsonl $D/case400_s1_raw.jsonl $D/joint150_s1_raw.jsonl $D/asked100_s5_raw.jsonl > $D/trainL.jsonl
wc -l $D/trainL.jsonl
echo "[$(date +%T)] training L"
$B train --model $START --data $D/trainL.jsonl --out $D/L --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 0 --save-steps 25 --resume --report-to none
echo "[$(date +%T)] mean"
$B model average $START $D/L/final --out $D/soup/final
echo "[$(date +%T)] eval mean beams 4"
$B eval bfcl --model $D/soup/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/bfcl
echo "[$(date +%T)] done"
