#!/usr/bin/env bash
# Command-line checks: help, a short bench run with its JSON line, and bad options that must
# fail with a message naming the option (exit status 2 for usage errors, never a trap).
set -uo pipefail
bin=${1:-.build/release/fairtune}
passed=0
failed=0

check() {
  local name=$1 expected_status=$2 expected_text=$3
  shift 3
  local output status
  output=$("$@" 2>&1)
  status=$?
  if [ "$status" -eq "$expected_status" ] && grep -q -- "$expected_text" <<<"$output"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: status $status (expected $expected_status), output:"
    echo "$output" | head -5
  fi
}

check "help" 0 "bench" "$bin" --help
check "bench help" 0 "--image-size" "$bin" bench --help
check "bench json" 0 '"images_per_second"' "$bin" bench --model resnet18 --width 0.25 --image-size 32 --batch 8 --steps 2 --warmup 1 --json
check "unknown model" 2 "--model" "$bin" bench --model resnet19
check "zero batch" 2 "--batch" "$bin" bench --batch 0
check "negative size" 2 "--image-size" "$bin" bench --image-size -4
check "zero width" 2 "--width" "$bin" bench --width 0
check "unknown precision" 2 "'fp16' is invalid for '--precision" "$bin" bench --precision fp16
check "bf16 says what it runs" 0 "--precision bf16: .*so this run is fp32" "$bin" bench --model resnet18 --width 0.25 --image-size 32 --batch 8 --steps 1 --warmup 1 --precision bf16
check "width rounds to zero" 2 "--width" "$bin" bench --width 0.001
check "unknown stem" 2 "--stem" "$bin" bench --stem tiny
check "unknown algorithm" 2 "--conv" "$bin" bench --conv fft
check "zero threads" 2 "--threads" "$bin" bench --threads 0
check "simclr bench" 0 '"objective":"simclr"' "$bin" bench --model resnet18 --width 0.25 --image-size 32 --batch 8 --steps 1 --warmup 1 --objective simclr --json
check "unknown objective" 2 "'byol' is invalid for '--objective" "$bin" bench --objective byol
check "strategy with simclr" 2 "--strategy is a fine-tuning strategy" "$bin" bench --objective simclr --strategy frozen
check "predict without links" 2 "--predict-ranks needs the links' costs" "$bin" bench --predict-ranks 4
check "predict" 0 '"predicted_images_per_second"' "$bin" bench --model resnet18 --width 0.25 --image-size 32 --batch 8 --steps 1 --warmup 1 --predict-ranks 4 --latency-us 50 --bandwidth-gbps 1 --json
check "comm without out" 2 "--comm needs --out" "$bin" bench --comm
check "missing profile" 2 "--comm-profile /nonexistent.json: no such file" "$bin" bench --predict-ranks 2 --comm-profile /nonexistent.json
check "pretrain epochs zero" 2 "--pretrain-epochs must be at least 1" "$bin" reproduce --out /tmp/never --pretrain-epochs 0

fixtures=Tests/TrainingTests/Fixtures
tmp=$(mktemp -d)
check "import" 0 "40-way head" "$bin" import --safetensors $fixtures/torchvision-resnet18.safetensors --model resnet18 --out "$tmp/a.ckpt"
check "inspect" 0 "every checksum verified" "$bin" inspect "$tmp/a.ckpt"
check "export" 0 "122 tensors" "$bin" export "$tmp/a.ckpt" --safetensors "$tmp/a.safetensors"
check "import wrong depth" 1 "layer1.2" "$bin" import --safetensors $fixtures/torchvision-resnet18.safetensors --model resnet34 --out "$tmp/b.ckpt"
check "import missing file" 2 "no such file" "$bin" import --safetensors "$tmp/none.safetensors" --model resnet18 --out "$tmp/b.ckpt"
head -c 500 "$tmp/a.ckpt" >"$tmp/cut.ckpt"
check "inspect truncated" 1 "truncated" "$bin" inspect "$tmp/cut.ckpt"
check "inspect not a checkpoint" 1 "not a fairtune checkpoint" "$bin" inspect $fixtures/torchvision-resnet18.safetensors
[ -e "$tmp/b.ckpt" ] && { echo "FAIL: a failed import left $tmp/b.ckpt behind"; failed=$((failed + 1)); }

# --from carries the model: the imported checkpoint (ResNet-18, imagenet stem, width 1/16)
# fine-tunes without --model, --width or --stem; an option that contradicts it is refused.
"$bin" synth --out "$tmp/faces" --train 32 --val 8 --test 8 --image-size 32 --seed 5 >/dev/null 2>&1
"$bin" pack --celeba "$tmp/faces" --image-size 32 --out "$tmp/packed" >/dev/null 2>&1
check "finetune takes the model from --from" 0 "validation mean F1" "$bin" finetune --data "$tmp/packed" --from "$tmp/a.ckpt" --strategy frozen --batch 16 --out "$tmp/ft"
check "finetune option contradicts --from" 2 "--width 0.5 contradicts --from" "$bin" finetune --data "$tmp/packed" --from "$tmp/a.ckpt" --strategy frozen --width 0.5 --out "$tmp/ft2"
check "finetune refused left nothing" 1 "" test -e "$tmp/ft2"
check "finetune bn-recal balanced" 0 "equal-weight mixture of Male and not Male" "$bin" finetune --data "$tmp/packed" --from "$tmp/a.ckpt" --strategy bn-recal --bn-balance male --batch 16 --out "$tmp/recal"
check "bn-recal records its pass" 0 '"recalibration"' cat "$tmp/recal/run.json"
check "--bn-balance without bn-recal" 2 "--bn-balance Male applies to bn-recal only" "$bin" finetune --data "$tmp/packed" --from "$tmp/a.ckpt" --strategy frozen --bn-balance Male --out "$tmp/ft3"
check "--bn-balance unknown attribute" 2 "--bn-balance Mail is not one of the 40" "$bin" sweep --data "$tmp/packed" --from "$tmp/a.ckpt" --strategies bn-recal --bn-balance Mail --out "$tmp/sw3"
check "sweep option contradicts --from" 2 "--model resnet34 contradicts --from" "$bin" sweep --data "$tmp/packed" --from "$tmp/a.ckpt" --strategies bn-stats --trials 2 --model resnet34 --out "$tmp/sw"
check "refused sweep left nothing" 1 "" test -e "$tmp/sw"
# A sweep whose every trial fails (each trial's folder is taken by a file) ends with status 1,
# naming the strategy and the failure.
mkdir -p "$tmp/sw2/trials" && touch "$tmp/sw2/trials/bn-stats-0" "$tmp/sw2/trials/bn-stats-1"
check "sweep with no finished trial" 1 "no finished trial for bn-stats (last failure: .*bn-stats-1" "$bin" sweep --data "$tmp/packed" --from "$tmp/a.ckpt" --strategies bn-stats --trials 1 --max-failures 1 --max-epochs 1 --batch 16 --out "$tmp/sw2"
rm -rf "$tmp"

scratch=$(mktemp -d)
check "synth help" 0 "--attributes" "$bin" synth --help
check "synth" 0 "wrote 12 images" "$bin" synth --out "$scratch/synth" --train 8 --val 2 --test 2 --image-size 32 --seed 3
check "synth existing out" 1 "already exists" "$bin" synth --out "$scratch/synth" --train 8
check "synth no images" 2 "--train, --val and --test" "$bin" synth --out "$scratch/none" --train 0 --val 0 --test 0
check "synth bad size" 2 "--image-size" "$bin" synth --out "$scratch/none" --image-size 4
check "pack" 0 "packed 12 images (8 train, 2 val, 2 test)" "$bin" pack --celeba "$scratch/synth" --image-size 16 --out "$scratch/packed"
rm "$scratch/synth/img_align_celeba/000004.jpg"
check "pack missing image" 1 "000004.jpg: is missing or unreadable" "$bin" pack --celeba "$scratch/synth" --image-size 16 --out "$scratch/packed2"
check "pack left nothing" 1 "" test -e "$scratch/packed2"
check "pack skip bad images" 0 "left out 1 bad images" "$bin" pack --celeba "$scratch/synth" --image-size 16 --out "$scratch/packed3" --skip-bad-images
check "pack bad size" 2 "--image-size" "$bin" pack --celeba "$scratch/synth" --image-size 0 --out "$scratch/packed4"
rm -rf "$scratch"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
