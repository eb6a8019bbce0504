set -e
cd /work/main
B=.venv/bin/funreason
D=runs/e26
START=runs/e25/run32/final
MIX="runs/e25/mix/train_raw+sample300+parallel300+nofit300+phrased300+optional300+asked300.jsonl"
rnd() { openssl enc -aes-256-ctr -pass pass:$1 -nosalt </dev/zero 2>/dev/null; }
while pgrep -f "bash runs/e26/chain.sh" >/dev/null; do sleep 20; done
test -f $D/L/final/config.json
echo "[$(date +%T)] sampling"
$B sample --kind case -n 400 --seed 2 --out $D/case400_s2.jsonl
$B sample --kind joint -n 150 --seed 2 --out $D/joint150_s2.jsonl
$B sample --kind asked -n 100 --seed 6 --out $D/asked100_s6.jsonl
for f in case400_s2 joint150_s2 asked100_s6; do
  s=${f##*_}; jq -c "del(.reasoning) | .id = \"$s-\" + .id" $D/$f.jsonl > $D/${f}_raw.jsonl
done
# other replayed rows than run L's: the mix without L's 400, then a draw of 400
grep -vxF -f $D/replay400u7.jsonl "$MIX" | shuf -n 400 --random-source=<(rnd replay8) > $D/replay400u8.jsonl
cat $D/replay400u8.jsonl $D/case400_s2_raw.jsonl $D/joint150_s2_raw.jsonl $D/asked100_s6_raw.jsonl > $D/trainM.jsonl
wc -l $D/trainM.jsonl
echo "[$(date +%T)] training M"
$B train --model $START --data $D/trainM.jsonl --out $D/M --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 --max-steps 150 --seed 1 --save-steps 25 --resume --report-to none
echo "[$(date +%T)] mean of three"
$B model average $START $D/L/final $D/M/final --out $D/soup3/final
echo "[$(date +%T)] eval mean of three beams 4"
$B eval bfcl --model $D/soup3/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup3-b4/bfcl
echo "[$(date +%T)] done"
