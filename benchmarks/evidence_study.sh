#!/usr/bin/env bash
# The evidence studies behind the README's "Evidence" section, on the bundled CIFAR-10 pair (cifar10-resnet56,
# taef2 at 64 px): Grad-CAM on the real-model table's 100 images, Efficient MPRT, the autoencoder-fidelity
# ladder and the selection-fraction grid (these two at 50 path points instead of 200, on 12 images, to fit a
# shared 2-core machine). One thread, one command after another; the fraction grid starts from the ladder's
# records (its GIG 0.1 and MA-GIG 0.05 on taef2 rows are the same jobs: same hashes).
# Usage: bash benchmarks/evidence_study.sh [cam] [emprt] [ladder] [fraction]   (default: all four)
set -euo pipefail
OUT=${OUT:-benchmarks/results/evidence}
PY=${PYTHON:-python}
export MAGIG_THREADS=1 OMP_NUM_THREADS=1
mkdir -p "$OUT"
run() {
  local name=$1; shift
  local start=$SECONDS
  echo "== $name: evaluate --dataset cifar10 $*" | tee -a "$OUT/times.txt"
  "$PY" -m magig_core evaluate --dataset cifar10 --no-progress "$@" --out "$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "$name: $((SECONDS - start)) s, MAGIG_THREADS=$MAGIG_THREADS, load $(cut -d' ' -f1-3 /proc/loadavg)" \
    | tee -a "$OUT/times.txt"
}
for study in "${@:-cam emprt ladder fraction}"; do
  for name in $study; do
    case $name in
      cam) run cam --limit 100 --methods grad-cam,grad-cam++ --batch-size 10 ;;
      emprt) run emprt --limit 10 --methods gi,ig,gig,ma-gig,grad-cam --metrics emprt --batch-size 10 ;;
      ladder) run ladder --limit 12 --steps 50 --methods gig,ma-gig --fraction gig=0.1,ma-gig=0.05 \
                --autoencoder ma-gig=taef2,taef2-q0.5,taef2-q1,taef2-q2,taef2-q4 --reference-method gig --batch-size 12 ;;
      fraction)
        mkdir -p "$OUT/fraction/records"
        cp "$OUT"/ladder/records/*.jsonl "$OUT/fraction/records/" 2>/dev/null || true
        run fraction --limit 12 --steps 50 --methods gig,ma-gig --fraction gig=0.01,0.05,0.1,0.2,ma-gig=0.01,0.05,0.1,0.2 \
          --reference-method "ma-gig fraction=0.05" --batch-size 12 ;;
      *) echo "unknown study $name" >&2; exit 2 ;;
    esac
  done
done
