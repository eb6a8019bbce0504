set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e24
START=runs/e23/soup/final
MIX="runs/bf16/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
$B sample --kind joint -n 200 --seed 0 --out $D/joint200_s0.jsonl
$B sample --kind case -n 150 --seed 2 --out $D/case150_s2.jsonl
$B sample --kind asked -n 100 --seed 7 --out $D/asked100_s7.jsonl
for f in joint200_s0 case150_s2 asked100_s7; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
shuf -n 400 --random-source=<(rnd replay9) "$MIX" > $D/replay400u9.jsonl
cat $D/replay400u9.jsonl $D/joint200_s0_raw.jsonl $D/case150_s2_raw.jsonl $D/asked100_s7_raw.jsonl > $D/trainJ.jsonl
wc -l $D/trainJ.jsonl
echo "[$(date +%T)] training J"
$B train --model $START --data $D/trainJ.jsonl --out $D/J --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 0 --save-steps 25 --resume --report-to none --bf16
echo "[$(date +%T)] eval J simple"
$B eval bfcl --model $D/J/final --guided --beams 4 --categories simple_python --limit 100 --max-tokens 192 --batch 24 --out $D/eval/J-b4/bfcl
echo "[$(date +%T)] done"
