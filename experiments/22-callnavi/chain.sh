set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e22
START=runs/e20/soup/final
MIX="runs/bf16/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
[ -f $D/multi300_s4.jsonl ] || $B sample --kind multi -n 300 --seed 4 --out $D/multi300_s4.jsonl
[ -f $D/rate100_s4.jsonl ] || $B sample --kind rate -n 100 --seed 4 --out $D/rate100_s4.jsonl
[ -f $D/asked100_s5.jsonl ] || $B sample --kind asked -n 100 --seed 5 --out $D/asked100_s5.jsonl
for f in multi300_s4 rate100_s4 asked100_s5; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
shuf -n 400 --random-source=<(rnd replay7) "$MIX" > $D/replay400u7.jsonl
shuf -n 400 --random-source=<(rnd replay8) "$MIX" > $D/replay400u8.jsonl
cat $D/replay400u7.jsonl $D/callnavi/train.jsonl $D/multi300_s4_raw.jsonl > $D/trainE.jsonl
cat $D/replay400u8.jsonl $D/callnavi/train.jsonl $D/rate100_s4_raw.jsonl $D/asked100_s5_raw.jsonl > $D/trainF.jsonl
wc -l $D/trainE.jsonl $D/trainF.jsonl
echo "[$(date +%T)] training E"
$B train --model $START --data $D/trainE.jsonl --out $D/E --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 0 --save-steps 25 --resume --report-to none --bf16
echo "[$(date +%T)] training F"
$B train --model $START --data $D/trainF.jsonl --out $D/F --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 1 --save-steps 25 --resume --report-to none --bf16
echo "[$(date +%T)] soup"
[ -f $D/soup/final/model.safetensors ] || $B model average $START $D/E/final $D/F/final --out $D/soup/final
echo "[$(date +%T)] eval soup beams"
$B eval bfcl --model $D/soup/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/bfcl
$B eval heldout runs/bf16/mix/heldout.jsonl --model $D/soup/final --guided --beams 4 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/heldout
echo "[$(date +%T)] callnavi heldout"
$B eval heldout $D/callnavi/heldout.jsonl --model $D/soup/final --guided --beams 4 --max-tokens 192 --batch 24 --out $D/eval/soup-b4/callnavi
$B eval heldout $D/callnavi/heldout.jsonl --model $START --guided --beams 4 --max-tokens 192 --batch 24 --out $D/eval/start-b4/callnavi
echo "[$(date +%T)] done"
