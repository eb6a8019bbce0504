set -e
# The thirty-third try's best member (the twenty-fifth try's recipe at batch 16) trained on this CPU, resumable.
# Its rows and base come from the twenty-fifth and twenty-seventh tries (bench/results_fromscratch/run.py
# with --out runs/e28, and --case 900 --out runs/e27).
# Run it as `bash bench/results_gpu/cpu.sh > runs/e33/cpu.log 2>&1`. Training resumes from the last
# checkpoint in runs/e33/m25b16 (1.6 GB each, kept on the machine, not committed); the
# progress so far is in bench/results_gpu/cpu_progress/.
cd /work/main
echo "[$(date +%T)] start"
.venv/bin/python bench/gpu_soup.py --only m25b16 --save-steps 20 --gradient-checkpointing --budget-s 200000 --base runs/e25/model \
  --data25 runs/e28/train_raw+case300+joint300.jsonl --data27 runs/e27/train_raw+case900+joint300.jsonl \
  --out runs/e33 --results bench/results_gpu/cpu_results.json
echo "[$(date +%T)] done"
