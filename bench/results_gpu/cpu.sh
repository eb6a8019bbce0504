set -e
# The thirty-third try's best member (the twenty-fifth try's recipe at batch 16) trained on this CPU, resumable.
# Its rows and base come from the twenty-fifth and twenty-seventh tries (bench/results_fromscratch/run.py
# with --out runs/e28, and --case 900 --out runs/e27).
cd /work/main
echo "[$(date +%T)] start"
.venv/bin/python bench/gpu_soup.py --only m25b16 --save-steps 20 --gradient-checkpointing --budget-s 200000 --base runs/e25/model \
  --data25 runs/e28/train_raw+case300+joint300.jsonl --data27 runs/e27/train_raw+case900+joint300.jsonl \
  --out runs/e33 --results runs/e33/cpu_results.json
echo "[$(date +%T)] done"
