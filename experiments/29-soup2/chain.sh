#!/usr/bin/env bash
# The twenty-ninth try, as it ran (from the checkout root): the twenty-eighth try's mean
# (runs/e28/soup/final) trained further on replayed rows of its own mix with new asked, optional,
# case and joint rows (reasoning left out, as in sft_raw), then the mean of the start and the run.
# A second run D (seed 8 rows, data order 1) was planned; at 17 s a step (150 steps, about 43
# minutes a run) it did not fit the session, so C alone ran (stopped once at step 25, resumed).
set -euo pipefail
F=.venv/bin/funreason
D=runs/e29
START=runs/e28/soup/final
MIX=runs/e28/train_raw+case300+joint300.jsonl   # the twenty-fifth try's training rows (bench/results_fromscratch/run.py)
mkdir -p $D
rand() { openssl enc -aes-256-ctr -pass pass:"$1" -nosalt </dev/zero 2>/dev/null; }
for run in C; do   # D: s=8, data_seed=1 (not run)
  if [ $run = C ]; then s=7; data_seed=0; else s=8; data_seed=1; fi
  for kind in asked:200 optional:100 case:100 joint:100; do
    k=${kind%%:*}; n=${kind##*:}
    $F sample --kind $k -n $n --seed $s --out $D/${k}${n}_s$s.jsonl
    jq -c "del(.reasoning) | .id = \"s$s-\" + .id" $D/${k}${n}_s$s.jsonl > $D/${k}${n}_s${s}_raw.jsonl
  done
  shuf -n 400 --random-source=<(rand replay$s) $MIX > $D/replay400_s$s.jsonl
  cat $D/replay400_s$s.jsonl $D/asked200_s${s}_raw.jsonl $D/optional100_s${s}_raw.jsonl $D/case100_s${s}_raw.jsonl $D/joint100_s${s}_raw.jsonl > $D/train$run.jsonl
  $F train --model $START --data $D/train$run.jsonl --out $D/$run --loss sft --lora 0 --lr 5e-5 --batch-size 4 --max-length 1024 \
    --max-steps 150 --seed $data_seed --save-steps 25 --resume --report-to none
done
$F model average $START $D/C/final --out $D/soup2/final
# screened greedy on simple_python 101-200 (not the reported entries), then scored searched on the first 100
$F eval bfcl --model $D/soup2/final --guided --categories simple_python --skip 100 --limit 100 --max-tokens 192 --batch 24 --out runs/dev/soup2/bfcl
$F eval bfcl --model $D/soup2/final --guided --beams 4 --categories simple_python,multiple,parallel,parallel_multiple,irrelevance --limit 100 --max-tokens 192 --batch 24 --out $D/eval/soup2-b4/bfcl
