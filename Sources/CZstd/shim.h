// zstd: one-shot and streaming compression, used for checkpoints.
#include <zstd.h>
