set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e24
START=runs/e23/soup/final
MIX="runs/bf16/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
$B sample --kind joint -n 200 --seed 1 --out $D/joint200_s1.jsonl
$B sample --kind case -n 150 --seed 3 --out $D/case150_s3.jsonl
$B sample --kind asked -n 100 --seed 8 --out $D/asked100_s8.jsonl
for f in joint200_s1 case150_s3 asked100_s8; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
shuf -n 400 --random-source=<(rnd replay10) "$MIX" > $D/replay400u10.jsonl
cat $D/replay400u10.jsonl $D/joint200_s1_raw.jsonl $D/case150_s3_raw.jsonl $D/asked100_s8_raw.jsonl > $D/trainK.jsonl
wc -l $D/trainK.jsonl
echo "[$(date +%T)] training K"
$B train --model $START --data $D/trainK.jsonl --out $D/K --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 1 --save-steps 25 --resume --report-to none --bf16
echo "[$(date +%T)] soup"
$B model average $D/J/final $D/K/final --out $D/soup/final
echo "[$(date +%T)] eval soup simple"
$B eval bfcl --model $D/soup/final --guided --beams 4 --categories simple_python --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/bfcl
echo "[$(date +%T)] done"
