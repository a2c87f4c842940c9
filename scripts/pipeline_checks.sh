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
rm -rf "$(dirname "$out")"
echo "pipeline: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
