#!/usr/bin/env bash
# The whole experiment on the tiny preset (`fairtune reproduce --preset tiny`), then a re-run
# that must skip every finished stage, and the report's files and its page in a browser checked.
# Two pretraining epochs instead of the preset's 10: the stages are checked here, not the backbone.
set -uo pipefail
bin=${1:-.build/release/fairtune}
out=$(mktemp -d)/reproduce
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

start=$(date +%s)
if "$bin" reproduce --preset tiny --pretrain-epochs 2 --out "$out" >"$out.log" 2>&1; then ok; else bad "reproduce --preset tiny exited non-zero"; tail -20 "$out.log"; fi
echo "reproduce --preset tiny: $(($(date +%s) - start)) s"
for f in table1.md table1.csv figure1.svg timing.md index.html; do
  [ -s "$out/report/$f" ] && ok || bad "report/$f is missing"
done
rows=$(grep -c ',finished,' "$out/sweep/trials.csv" 2>/dev/null || echo 0)
[ "$rows" -eq 14 ] && ok || bad "trials.csv has $rows finished trials, expected 14 (2 per model: the five strategies, bn-recal and supervised)"
[ -s "$out/balanced/bn-recal-male/run.json" ] && ok || bad "the balanced bn-recal run (balanced/bn-recal-male) is missing"
grep -q "(f) Does bn-recal match bn-stats" "$out/report/findings.md" && ok || bad "findings.md lacks finding (f), bn-recal against bn-stats"
[ -s "$out/converged/bn-stats/run.json" ] && grep -q '"head" : "converged"' "$out/converged/bn-stats/run.json" && ok || bad "converged/bn-stats has no converged-head run"
grep -q "## Under the converged head" "$out/report/findings.md" && ok || bad "findings.md lacks the findings under the converged head"
grep -q "supervised / bn-stats" "$out/report/timing.md" && ok || bad "timing.md lacks the supervised / bn-stats ratio"
# The page as a browser shows it: no sideways scrolling at 1280 px, no broken image (Chromium is
# installed by the check when missing).
if scripts/check_report_page.sh "$out/report" >"$out.page.log" 2>&1; then ok; else bad "the report page failed the browser check"; cat "$out.page.log"; fi
if "$bin" reproduce --preset tiny --pretrain-epochs 2 --out "$out" >"$out.again.log" 2>&1 && grep -q "\[pretrain\] done already" "$out.again.log"; then ok; else bad "a re-run did not skip the finished stages"; fi

# The planted effect at tiny scale (docs/mechanism.md): faces drawn under a photometric shift
# pretrain one backbone, the same faces unshifted another; on the unshifted faces the shifted
# backbone's first BatchNorm must be the farther from the data's statistics (by construction: its
# inputs were brighter, flatter and warmer), and bn-recal against frozen on it is reported with
# its interval. Two pretraining epochs: the statistics follow the inputs within the first.
planted=$(dirname "$out")/planted
mkdir -p "$planted"
tiny=(--model resnet18 --width 0.25 --stem small --image-size 32)
start=$(date +%s)
if "$bin" synth --out "$planted/clean" --train 1000 --val 100 --test 600 --image-size 48 --seed 3 >/dev/null 2>&1 &&
  "$bin" synth --out "$planted/shifted" --train 1000 --val 100 --test 600 --image-size 48 --seed 3 --shift strong >"$planted/synth.log" 2>&1 &&
  grep -q "under the photometric shift contrast=0.5,brightness=0.2,cast=0.1" "$planted/synth.log" &&
  cmp -s "$planted/clean/list_attr_celeba.txt" "$planted/shifted/list_attr_celeba.txt"; then ok; else bad "synth --shift strong did not write the same labels under the stated shift"; fi
for d in clean shifted; do
  "$bin" pack --celeba "$planted/$d" --out "$planted/$d-packed" --image-size 32 >/dev/null 2>&1 &&
    "$bin" pretrain --data "$planted/$d-packed" --out "$planted/pretrain-$d" "${tiny[@]}" --batch 64 --epochs 2 --lr 2.4 --min-crop-scale 0.7 --monitor-images 0 --seed 0 >"$planted/pretrain-$d.log" 2>&1 ||
    bad "pretraining on the $d faces failed"
done
first_layer() { "$bin" inspect "$planted/pretrain-$1/final.ckpt" --bn-data "$planted/clean-packed" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['layers'][0]['mean'])"; }
clean_d=$(first_layer clean 2>/dev/null || echo nan)
shifted_d=$(first_layer shifted 2>/dev/null || echo nan)
echo "planted shift: first BatchNorm's |dmean|/sd from the unshifted data: $shifted_d (pretrained on shifted faces) against $clean_d (unshifted)"
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if a > b else 1)" "$shifted_d" "$clean_d" && ok ||
  bad "the backbone pretrained on shifted faces is not the farther from the unshifted data's statistics ($shifted_d against $clean_d)"
for s in frozen bn-recal; do
  "$bin" finetune --data "$planted/clean-packed" --from "$planted/pretrain-shifted/final.ckpt" --strategy "$s" --head converged --weight-decay 1e-4 --out "$planted/$s" >/dev/null 2>&1 || bad "finetune $s on the shifted backbone failed"
done
if "$bin" fairness --attributes "$planted/clean/list_attr_celeba.txt" --partition "$planted/clean/list_eval_partition.txt" --bootstrap 200 \
  --scores "$planted/bn-recal/scores-test.csv" --scores-train "$planted/bn-recal/scores-train.csv" \
  --compare "$planted/frozen/scores-test.csv" --compare-train "$planted/frozen/scores-train.csv" --out "$planted/compare" >/dev/null 2>&1 &&
  line=$(grep -E "^\| all \|" "$planted/compare/comparison.md"); then
  echo "planted shift: bn-recal - frozen, all worst: $(awk -F'|' '{print $9}' <<<"$line")"
  ok
else
  bad "the comparison of bn-recal with frozen on the shifted backbone failed"
fi
echo "planted shift: $(($(date +%s) - start)) s"
rm -rf "$(dirname "$out")"
echo "pipeline: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
