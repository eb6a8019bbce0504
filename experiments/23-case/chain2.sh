set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e23
START=runs/e20/soup/final
MIX="runs/bf16/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
while pgrep -f "funreason train --model $START --data $D/trainG" > /dev/null; do sleep 20; done
test -f $D/G/final/model.safetensors
echo "[$(date +%T)] G done"
$B sample --kind case -n 400 --seed 1 --out $D/case400_s1.jsonl
$B sample --kind multi -n 100 --seed 5 --out $D/multi100_s5.jsonl
$B sample --kind asked -n 100 --seed 6 --out $D/asked100_s6.jsonl
for f in case400_s1 multi100_s5 asked100_s6; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
shuf -n 400 --random-source=<(rnd replay8) "$MIX" > $D/replay400u8.jsonl
cat $D/replay400u8.jsonl $D/case400_s1_raw.jsonl $D/multi100_s5_raw.jsonl $D/asked100_s6_raw.jsonl > $D/trainH.jsonl
wc -l $D/trainH.jsonl
echo "[$(date +%T)] training H"
$B train --model $START --data $D/trainH.jsonl --out $D/H --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 1 --save-steps 25 --resume --report-to none --bf16
echo "[$(date +%T)] soup"
$B model average $START $D/G/final $D/H/final --out $D/soup/final
echo "[$(date +%T)] eval soup beams"
$B eval bfcl --model $D/soup/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/bfcl
echo "[$(date +%T)] done"
