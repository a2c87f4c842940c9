#!/usr/bin/env bash
# The bad-input matrix: every command against a catalogue of bad inputs (missing, empty,
# truncated and damaged files, wrong headers, NaN and inf, negative and zero sizes, unknown
# names, impossible combinations, unwritable folders, a file-size limit standing in for a full
# disk). Each case must exit with status 1 or 2 (never a signal, never 0), print a message that
# names the file, line or option at fault, and leave no output behind (no final file, no
# temporary one). Prints a table of case, status and the message's first line.
# Usage: scripts/bad_inputs.sh [FAIRTUNE_BINARY]
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$PWD/.build/release/fairtune}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cases=0
clean=0
failures=()
table=()

# bad NAME EXPECTED_TEXT OUTPUT -- COMMAND...
#   OUTPUT: a path the command was asked to write ("-" for none); it must not exist afterwards,
#   or hold no file but a lock, and no *.partial or temporary file may appear anywhere in it.
bad() {
  local name=$1 expected=$2 output=$3
  shift 4
  local log=$work/log.$cases status first problems=()
  "$@" >"$log" 2>&1
  status=$?
  cases=$((cases + 1))
  first=$(grep -m1 -E "Error|error|fairtune:" "$log" || head -1 "$log")
  first=${first:0:150}
  if [ "$status" -ne 1 ] && [ "$status" -ne 2 ]; then problems+=("exit status $status"); fi
  if ! grep -qF -- "$expected" "$log"; then problems+=("no mention of '$expected'"); fi
  if [ "$output" != - ] && [ -e "$output" ]; then
    local left
    left=$(find "$output" -type f ! -name '*.lock' ! -name '.lock' 2>/dev/null | head -3)
    [ -n "$left" ] && problems+=("left behind: $(echo $left)")
  fi
  local temporary
  temporary=$(find "$work" -name '*.partial' -o -name '*.tmp.*' 2>/dev/null | head -1)
  [ -n "$temporary" ] && problems+=("temporary file left: $temporary") && rm -f "$temporary"
  if [ ${#problems[@]} -eq 0 ]; then
    clean=$((clean + 1))
    table+=("$(printf '%-44s %3s  ok   %s' "$name" "$status" "$first")")
  else
    failures+=("$name: ${problems[*]}")
    table+=("$(printf '%-44s %3s  BAD  %s' "$name" "$status" "$first")")
    sed 's/^/    /' "$log" | head -4 >>"$work/failures"
  fi
}

# Good inputs to damage.
"$bin" synth --out "$work/raw" --train 48 --val 16 --test 16 --image-size 24 --seed 1 >/dev/null 2>&1
"$bin" pack --celeba "$work/raw" --image-size 16 --out "$work/packed" >/dev/null 2>&1
model=(--model resnet18 --width 0.0625 --stem small --image-size 16 --threads 1)
"$bin" pretrain --data "$work/packed" --out "$work/pre" --batch 16 --steps 1 "${model[@]}" >/dev/null 2>&1
"$bin" finetune --data "$work/packed" --from "$work/pre/final.ckpt" --strategy full --out "$work/ft" --batch 16 --steps 1 "${model[@]}" >/dev/null 2>&1
"$bin" export "$work/pre/final.ckpt" --safetensors "$work/pre.safetensors" >/dev/null 2>&1
[ -s "$work/ft/scores-test.csv" ] || { echo "setting up the good inputs failed" >&2; exit 1; }
attrs=$work/raw/list_attr_celeba.txt
parts=$work/raw/list_eval_partition.txt
scores=$work/ft/scores-test.csv
train_scores=$work/ft/scores-train.csv
ckpt=$work/pre/final.ckpt
out=$work/out
# A folder nobody can write into, root included: a path under a regular file.
echo "a file, not a folder" >"$work/readonly"

# A copy of the raw folder with one file replaced: rawcopy NAME FILE CONTENTS-COMMAND...
rawcopy() {
  local name=$1 file=$2
  shift 2
  cp -r "$work/raw" "$work/$name"
  "$@" "$work/$name/$file"
}
packcopy() {
  cp -r "$work/packed" "$work/$1"
}

# --- synth
bad "synth: negative train count" "--train" "$out/s1" -- "$bin" synth --out "$out/s1" --train=-1
bad "synth: zero image size" "--image-size" "$out/s2" -- "$bin" synth --out "$out/s2" --image-size 0
bad "synth: unwritable output folder" "$work/readonly" - -- "$bin" synth --out "$work/readonly/s" --train 4 --val 2 --test 2
bad "synth: output exists" "$work/raw" - -- "$bin" synth --out "$work/raw" --train 4
bad "synth: missing attribute file" "missing.txt" "$out/s3" -- "$bin" synth --out "$out/s3" --attributes "$work/missing.txt"
bad "synth: zero threads" "--threads" "$out/s4" -- "$bin" synth --out "$out/s4" --threads 0
bad "synth: file-size limit (full disk)" "$out/s5" "$out/s5" -- bash -c "ulimit -f 8; exec \"$bin\" synth --out \"$out/s5\" --train 64 --val 8 --test 8 --image-size 64"

# --- pack
bad "pack: missing folder" "$work/nothere" "$out/p1" -- "$bin" pack --celeba "$work/nothere" --image-size 16 --out "$out/p1"
rawcopy empty-attrs list_attr_celeba.txt truncate -s 0
bad "pack: empty attribute file" "list_attr_celeba.txt" "$out/p2" -- "$bin" pack --celeba "$work/empty-attrs" --image-size 16 --out "$out/p2"
rawcopy bad-count list_attr_celeba.txt sed -i '1s/.*/eighty/'
bad "pack: attribute count line not a number" "list_attr_celeba.txt:1" "$out/p3" -- "$bin" pack --celeba "$work/bad-count" --image-size 16 --out "$out/p3"
rawcopy short-header list_attr_celeba.txt sed -i '2s/ Young$//'
bad "pack: 39 attribute names" "list_attr_celeba.txt:2" "$out/p4" -- "$bin" pack --celeba "$work/short-header" --image-size 16 --out "$out/p4"
rawcopy bad-value list_attr_celeba.txt sed -i '5s/ 1 / 2 /'
bad "pack: attribute value 2" "list_attr_celeba.txt:5" "$out/p5" -- "$bin" pack --celeba "$work/bad-value" --image-size 16 --out "$out/p5"
rawcopy nan-value list_attr_celeba.txt sed -i '7s/-1/nan/'
bad "pack: attribute value nan" "list_attr_celeba.txt:7" "$out/p6" -- "$bin" pack --celeba "$work/nan-value" --image-size 16 --out "$out/p6"
rawcopy truncated-attrs list_attr_celeba.txt sed -i '$d'
bad "pack: fewer rows than the count line" "list_attr_celeba.txt" "$out/p7" -- "$bin" pack --celeba "$work/truncated-attrs" --image-size 16 --out "$out/p7"
rawcopy no-partition list_eval_partition.txt rm
bad "pack: missing partition file" "list_eval_partition.txt" "$out/p8" -- "$bin" pack --celeba "$work/no-partition" --image-size 16 --out "$out/p8"
rawcopy bad-split list_eval_partition.txt sed -i '3s/ [0-2]$/ 7/'
bad "pack: partition value 7" "list_eval_partition.txt:3" "$out/p9" -- "$bin" pack --celeba "$work/bad-split" --image-size 16 --out "$out/p9"
rawcopy extra-partition list_eval_partition.txt sed -i '$a 999999.jpg 0'
bad "pack: partition names an unknown image" "999999.jpg" "$out/p10" -- "$bin" pack --celeba "$work/extra-partition" --image-size 16 --out "$out/p10"
rawcopy missing-image img_align_celeba/000003.jpg rm
bad "pack: missing image" "000003.jpg" "$out/p11" -- "$bin" pack --celeba "$work/missing-image" --image-size 16 --out "$out/p11"
rawcopy corrupt-image img_align_celeba/000004.jpg truncate -s 100
bad "pack: truncated JPEG" "000004.jpg" "$out/p12" -- "$bin" pack --celeba "$work/corrupt-image" --image-size 16 --out "$out/p12"
bad "pack: zero image size" "--image-size" "$out/p13" -- "$bin" pack --celeba "$work/raw" --image-size 0 --out "$out/p13"
bad "pack: unwritable output folder" "$work/readonly" - -- "$bin" pack --celeba "$work/raw" --image-size 16 --out "$work/readonly/p"
bad "pack: file-size limit (full disk)" "$out/p14" "$out/p14" -- bash -c "ulimit -f 4; exec \"$bin\" pack --celeba \"$work/raw\" --image-size 64 --out \"$out/p14\""

# --- packed data read by training
packcopy bad-magic
printf 'XXXX' | dd of="$work/bad-magic/labels.bin" bs=1 count=4 conv=notrunc 2>/dev/null
bad "pretrain: packed labels with a wrong magic" "labels.bin" "$out/t1" -- "$bin" pretrain --data "$work/bad-magic" --out "$out/t1" --batch 8 --steps 1 "${model[@]}"
packcopy truncated-shard
shard=$(ls "$work/truncated-shard"/images-*.bin 2>/dev/null | head -1)
[ -n "$shard" ] && truncate -s 200 "$shard"
bad "pretrain: truncated image shard" "truncated-shard" "$out/t2" -- "$bin" pretrain --data "$work/truncated-shard" --out "$out/t2" --batch 8 --steps 1 "${model[@]}"
bad "pretrain: missing data" "$work/nothere" "$out/t3" -- "$bin" pretrain --data "$work/nothere" --out "$out/t3" "${model[@]}"
bad "pretrain: zero batch" "--batch" "$out/t4" -- "$bin" pretrain --data "$work/packed" --out "$out/t4" --batch 0 "${model[@]}"
bad "pretrain: negative epochs" "--epochs" "$out/t5" -- "$bin" pretrain --data "$work/packed" --out "$out/t5" --epochs=-1 "${model[@]}"
bad "pretrain: learning rate nan" "--lr" "$out/t6" -- "$bin" pretrain --data "$work/packed" --out "$out/t6" --lr nan "${model[@]}"
bad "pretrain: learning rate inf" "--lr" "$out/t7" -- "$bin" pretrain --data "$work/packed" --out "$out/t7" --lr inf "${model[@]}"
bad "pretrain: unknown optimizer" "--optimizer" "$out/t8" -- "$bin" pretrain --data "$work/packed" --out "$out/t8" --optimizer adagrad "${model[@]}"
bad "pretrain: unknown schedule" "--schedule" "$out/t9" -- "$bin" pretrain --data "$work/packed" --out "$out/t9" --schedule linear "${model[@]}"
bad "pretrain: unknown model" "--model" "$out/t10" -- "$bin" pretrain --data "$work/packed" --out "$out/t10" --model resnet99
bad "pretrain: zero width" "--width" "$out/t11" -- "$bin" pretrain --data "$work/packed" --out "$out/t11" --width 0
bad "pretrain: negative width" "--width" "$out/t12" -- "$bin" pretrain --data "$work/packed" --out "$out/t12" --width=-1
bad "pretrain: width beyond the widest model" "--width" "$out/t12b" -- "$bin" pretrain --data "$work/packed" --out "$out/t12b" --width 1000
bad "pretrain: unknown stem" "--stem" "$out/t13" -- "$bin" pretrain --data "$work/packed" --out "$out/t13" --stem giant
bad "pretrain: image size unlike the packed data" "--image-size" "$out/t14" -- "$bin" pretrain --data "$work/packed" --out "$out/t14" --model resnet18 --width 0.0625 --stem small --image-size 32
bad "pretrain: unwritable run folder" "$work/readonly" - -- "$bin" pretrain --data "$work/packed" --out "$work/readonly/run" --batch 8 --steps 1 "${model[@]}"
bad "pretrain: zero threads" "--threads" "$out/t15" -- "$bin" pretrain --data "$work/packed" --out "$out/t15" --model resnet18 --threads 0
bad "pretrain: negative warmup" "--warmup-epochs" "$out/t16" -- "$bin" pretrain --data "$work/packed" --out "$out/t16" --warmup-epochs=-1 "${model[@]}"
bad "pretrain: negative weight decay" "--weight-decay" "$out/t17" -- "$bin" pretrain --data "$work/packed" --out "$out/t17" --weight-decay=-1 "${model[@]}"
bad "pretrain: run made with other options" "--batch" - -- "$bin" pretrain --data "$work/packed" --out "$work/pre" --batch 32 --steps 1 "${model[@]}"
bad "pretrain: more ranks' worth of batch than images" "--batch" "$out/t18" -- "$bin" pretrain --data "$work/packed" --out "$out/t18" --batch 100000 --steps 1 "${model[@]}"

# --- checkpoints
head -c 4096 /dev/urandom >"$work/random.ckpt"
head -c 300 "$ckpt" >"$work/truncated.ckpt"
echo "not a checkpoint" >"$work/text.ckpt"
: >"$work/empty.ckpt"
bad "finetune: unknown strategy" "--strategy" "$out/f1" -- "$bin" finetune --data "$work/packed" --from "$ckpt" --strategy half --out "$out/f1" "${model[@]}"
bad "finetune: frozen without --from" "--from" "$out/f2" -- "$bin" finetune --data "$work/packed" --strategy frozen --out "$out/f2" "${model[@]}"
bad "finetune: supervised with --from" "--from" "$out/f3" -- "$bin" finetune --data "$work/packed" --from "$ckpt" --strategy supervised --out "$out/f3" "${model[@]}"
bad "finetune: missing checkpoint" "$work/none.ckpt" "$out/f4" -- "$bin" finetune --data "$work/packed" --from "$work/none.ckpt" --strategy full --out "$out/f4" "${model[@]}"
bad "finetune: random bytes as checkpoint" "random.ckpt" "$out/f5" -- "$bin" finetune --data "$work/packed" --from "$work/random.ckpt" --strategy full --out "$out/f5" "${model[@]}"
bad "finetune: truncated checkpoint" "truncated.ckpt" "$out/f6" -- "$bin" finetune --data "$work/packed" --from "$work/truncated.ckpt" --strategy full --out "$out/f6" "${model[@]}"
bad "finetune: text file as checkpoint" "text.ckpt" "$out/f7" -- "$bin" finetune --data "$work/packed" --from "$work/text.ckpt" --strategy full --out "$out/f7" "${model[@]}"
bad "finetune: empty checkpoint" "empty.ckpt" "$out/f8" -- "$bin" finetune --data "$work/packed" --from "$work/empty.ckpt" --strategy full --out "$out/f8" "${model[@]}"
bad "finetune: checkpoint of another model" "--model" "$out/f9" -- "$bin" finetune --data "$work/packed" --from "$ckpt" --strategy full --out "$out/f9" --model resnet34 --width 0.0625 --stem small --image-size 16
bad "finetune: --random-backbone with --from" "--random-backbone" "$out/f10" -- "$bin" finetune --data "$work/packed" --from "$ckpt" --random-backbone --strategy frozen --out "$out/f10" "${model[@]}"
bad "inspect: missing checkpoint" "none.ckpt" - -- "$bin" inspect "$work/none.ckpt"
bad "inspect: random bytes" "random.ckpt" - -- "$bin" inspect "$work/random.ckpt"
bad "inspect: truncated checkpoint" "truncated.ckpt" - -- "$bin" inspect "$work/truncated.ckpt"
bad "export: truncated checkpoint" "truncated.ckpt" "$out/e1.safetensors" -- "$bin" export "$work/truncated.ckpt" --safetensors "$out/e1.safetensors"
bad "export: unwritable output" "$work/readonly" - -- "$bin" export "$ckpt" --safetensors "$work/readonly/e.safetensors"
bad "evaluate: random bytes as model" "random.ckpt" "$out/v1" -- "$bin" evaluate --data "$work/packed" --model "$work/random.ckpt" --out "$out/v1" --threads 1

# --- safetensors
head -c 8 /dev/urandom >"$work/short.safetensors"
printf '\xff\xff\xff\xff\x00\x00\x00\x00{}' >"$work/huge-header.safetensors"
printf '\x02\x00\x00\x00\x00\x00\x00\x00{x' >"$work/bad-json.safetensors"
head -c 2000 "$work/pre.safetensors" >"$work/truncated.safetensors"
bad "import: missing safetensors" "none.safetensors" "$out/i1.ckpt" -- "$bin" import --safetensors "$work/none.safetensors" --model resnet18 --out "$out/i1.ckpt"
bad "import: 8 random bytes" "short.safetensors" "$out/i2.ckpt" -- "$bin" import --safetensors "$work/short.safetensors" --model resnet18 --out "$out/i2.ckpt"
bad "import: header length beyond the file" "huge-header.safetensors" "$out/i3.ckpt" -- "$bin" import --safetensors "$work/huge-header.safetensors" --model resnet18 --out "$out/i3.ckpt"
bad "import: header not JSON" "bad-json.safetensors" "$out/i4.ckpt" -- "$bin" import --safetensors "$work/bad-json.safetensors" --model resnet18 --out "$out/i4.ckpt"
bad "import: truncated tensors" "truncated.safetensors" "$out/i5.ckpt" -- "$bin" import --safetensors "$work/truncated.safetensors" --model resnet18 --out "$out/i5.ckpt"

# --- sweep
space() { echo "$2" >"$work/$1.json"; }
space bad-json '{"optimizers": '
space unknown-key '{"epochs": 3}'
space negative-lr '{"optimizers": {"sgd": [-1, 1]}}'
space reversed-lr '{"optimizers": {"sgd": [1, 0.1]}}'
space unknown-optimizer '{"optimizers": {"rmsprop": [0.1, 1]}}'
space unknown-schedule '{"schedules": ["linear"]}'
bad "sweep: zero trials" "--trials" "$out/w1" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --trials 0 --out "$out/w1" "${model[@]}"
bad "sweep: zero group size" "--group-size" "$out/w2" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --group-size 0 --out "$out/w2" "${model[@]}"
bad "sweep: unknown strategy" "--strategies" "$out/w3" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full,half --out "$out/w3" "${model[@]}"
bad "sweep: a strategy twice" "--strategies" "$out/w4" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full,full --out "$out/w4" "${model[@]}"
bad "sweep: missing --space" "nospace.json" "$out/w5" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/nospace.json" --out "$out/w5" "${model[@]}"
bad "sweep: --space not JSON" "bad-json.json" "$out/w6" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/bad-json.json" --out "$out/w6" "${model[@]}"
bad "sweep: --space unknown key" "unknown key 'epochs'" "$out/w7" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/unknown-key.json" --out "$out/w7" "${model[@]}"
bad "sweep: --space negative learning rate" "negative-lr.json" "$out/w8" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/negative-lr.json" --out "$out/w8" "${model[@]}"
bad "sweep: --space reversed range" "reversed-lr.json" "$out/w9" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/reversed-lr.json" --out "$out/w9" "${model[@]}"
bad "sweep: --space unknown optimizer" "rmsprop" "$out/w10" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/unknown-optimizer.json" --out "$out/w10" "${model[@]}"
bad "sweep: --space unknown schedule" "linear" "$out/w11" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --space "$work/unknown-schedule.json" --out "$out/w11" "${model[@]}"
bad "sweep: ASHA with no rung below max epochs" "--asha-min-epochs" "$out/w12" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --scheduler asha --max-epochs 1 --out "$out/w12" "${model[@]}"
bad "sweep: ASHA eta 1" "--asha-eta" "$out/w13" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --scheduler asha --asha-eta 1 --out "$out/w13" "${model[@]}"
bad "sweep: unknown scheduler" "--scheduler" "$out/w14" -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --scheduler hyperband --out "$out/w14" "${model[@]}"
mkdir -p "$work/damaged-sweep" && echo "garbage" >"$work/damaged-sweep/journal.jsonl"
bad "sweep: damaged journal" "journal.jsonl:1" - -- "$bin" sweep --data "$work/packed" --from "$ckpt" --strategies full --trials 1 --batch 16 --out "$work/damaged-sweep" "${model[@]}"

# --- fairness and report
head -3 "$scores" >"$work/short-scores.csv"
sed '4s/,[^,]*$/,nan/' "$scores" >"$work/nan-scores.csv"
sed '4s/,[^,]*$/,inf/' "$scores" >"$work/inf-scores.csv"
sed '1s/Young/Old/' "$scores" >"$work/header-scores.csv"
sed '5s/,[^,]*$//' "$scores" >"$work/column-scores.csv"
sed '6s/^[^,]*,/999999.jpg,/' "$scores" >"$work/unknown-scores.csv"
: >"$work/empty-scores.csv"
fair() { "$bin" fairness --attributes "$attrs" --partition "$parts" --scores-train "$train_scores" --out "$1" --scores "$2"; }
bad "fairness: missing scores" "none.csv" "$out/a1" -- fair "$out/a1" "$work/none.csv"
bad "fairness: empty scores" "empty-scores.csv" "$out/a2" -- fair "$out/a2" "$work/empty-scores.csv"
bad "fairness: scores without the test images" "short-scores.csv" "$out/a3" -- fair "$out/a3" "$work/short-scores.csv"
bad "fairness: nan score" "nan-scores.csv:4" "$out/a4" -- fair "$out/a4" "$work/nan-scores.csv"
bad "fairness: inf score" "inf-scores.csv:4" "$out/a5" -- fair "$out/a5" "$work/inf-scores.csv"
bad "fairness: wrong header" "header-scores.csv:1" "$out/a6" -- fair "$out/a6" "$work/header-scores.csv"
bad "fairness: a row with a column missing" "column-scores.csv:5" "$out/a7" -- fair "$out/a7" "$work/column-scores.csv"
bad "fairness: unknown image" "999999.jpg" "$out/a8" -- fair "$out/a8" "$work/unknown-scores.csv"
bad "fairness: negative bootstrap" "--bootstrap" "$out/a9" -- "$bin" fairness --attributes "$attrs" --partition "$parts" --scores "$scores" --out "$out/a9" --bootstrap=-5
bad "fairness: unwritable output" "$work/readonly" - -- fair "$work/readonly/f" "$scores"
mkdir -p "$work/norun" "$work/badjson" "$work/negative"
echo "{" >"$work/badjson/run.json"
sed 's/"training_seconds" *: *[0-9.e+-]*/"training_seconds": -4/' "$work/ft/run.json" >"$work/negative/run.json"
cp "$work/ft"/scores-*.csv "$work/negative/"
bad "report: no runs" "--runs" "$out/r1" -- "$bin" report --out "$out/r1"
bad "report: a run without run.json" "run.json" "$out/r2" -- "$bin" report --runs "$work/norun" --out "$out/r2"
bad "report: run.json not JSON" "badjson/run.json" "$out/r3" -- "$bin" report --runs "$work/badjson" --out "$out/r3"
bad "report: negative training seconds" "training_seconds" "$out/r4" -- "$bin" report --runs "$work/negative" --out "$out/r4" --attributes "$attrs" --partition "$parts"
bad "report: --attributes without --partition" "--partition" "$out/r5" -- "$bin" report --runs "$work/ft" --out "$out/r5" --attributes "$attrs"

# --- the rest
bad "plan: zero nodes" "--nodes" - -- "$bin" plan --nodes 0
bad "plan: more ranks than cores per node" "--ranks-per-node" - -- "$bin" plan --ranks-per-node 4 --cores-per-node 2
bad "reproduce: missing CelebA folder" "$work/nothere" "$out/x1" -- "$bin" reproduce --preset paper --celeba "$work/nothere" --out "$out/x1"
bad "reproduce: zero seeds" "--seeds" "$out/x2" -- "$bin" reproduce --seeds 0 --out "$out/x2"
bad "reproduce: unknown preset" "--preset" "$out/x3" -- "$bin" reproduce --preset huge --out "$out/x3"
bad "bench: zero batch" "--batch" - -- "$bin" bench --batch 0
bad "bench: unknown convolution" "--conv" - -- "$bin" bench --conv fft
echo "not json" >"$work/profile-garbage.json"
echo '{"costs":{"allreduce":{"alpha":-1,"beta":0}},"points":[],"source":"x"}' >"$work/profile-negative.json"
bad "bench: profile not JSON" "--comm-profile $work/profile-garbage.json is not a collective profile" - -- "$bin" bench --predict-ranks 2 --comm-profile "$work/profile-garbage.json"
bad "bench: profile with negative costs" "no usable costs" - -- "$bin" bench --predict-ranks 2 --comm-profile "$work/profile-negative.json"
bad "bench: --comm on one rank" "run it under mpirun" "$work/profile-one.json" -- "$bin" bench --comm --out "$work/profile-one.json" --batch 4 --model resnet18 --width 0.0625 --image-size 16 --stem small
bad "bench: zero predicted ranks" "--predict-ranks" - -- "$bin" bench --predict-ranks 0 --latency-us 1 --bandwidth-gbps 1
bad "bench: negative bandwidth" "--bandwidth-gbps" - -- "$bin" bench --predict-ranks 2 --latency-us 1 --bandwidth-gbps -1
bad "plan: missing profile" "$work/nothere.json" - -- "$bin" plan --preset tiny --comm-profile "$work/nothere.json"
bad "plan: profile and a latency" "--comm-profile and --latency-us" - -- "$bin" plan --comm-profile "$work/profile-garbage.json" --latency-us 5
bad "bench-data: zero images" "--images" - -- "$bin" bench-data --images 0
bad "synth: a shift out of range" "contrast must be in (0, 4]" "$out/s1" -- "$bin" synth --out "$out/s1" --train 4 --shift contrast=9
bad "synth: an unknown shift term" "'glow' is not contrast, brightness, cast or noise" "$out/s2" -- "$bin" synth --out "$out/s2" --train 4 --shift glow=1
bad "inspect: --bn-data not a packed dataset" "$work/raw: has no labels.bin" - -- "$bin" inspect "$work/pre/final.ckpt" --bn-data "$work/raw"
bad "bench: unknown collectives" "--collectives" - -- "$bin" bench --collectives lifo
bad "bench: unknown gradient wire" "--gradient-wire" - -- "$bin" bench --gradient-wire fp8
bad "unknown command" "frobnicate" - -- "$bin" frobnicate

printf '%-44s %3s  %-4s %s\n' "case" "exit" "" "first line of the message"
printf '%s\n' "${table[@]}"
echo
echo "bad inputs: $cases cases, $clean clean, ${#failures[@]} not"
if [ ${#failures[@]} -gt 0 ]; then
  printf '  %s\n' "${failures[@]}"
  cat "$work/failures" 2>/dev/null
  exit 1
fi
